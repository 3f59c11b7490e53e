package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// start runs app.Run with cfg in the background, returns the API's base
// URL once it listens, and stops the process when t ends, failing t if Run
// does not return nil.
func start(t *testing.T, cfg app.Config) string {
	t.Helper()
	cfg.API.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, testenv.Logger(t), func(a net.Addr) { addrc <- a }) }()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("app.Run returned before serving HTTP: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the API did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel = %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return base
}

// answer GETs path and returns the status, the content type and the body's
// detail (a problem) or its status field (/health, /ready).
func answer(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if json.Unmarshal(body, &v) != nil {
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	if d, ok := v["detail"]; ok {
		return resp.StatusCode, resp.Header.Get("Content-Type"), fmt.Sprint(d)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), fmt.Sprint(v["status"])
}

// waitAnswer waits until GET url answers status with want in its detail,
// and fails with the last answer otherwise.
func waitAnswer(t *testing.T, url string, status int, want string) {
	t.Helper()
	var code int
	var detail string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if code, _, detail = answer(t, url); code == status && strings.Contains(detail, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s = %d %q after 30s, want %d %q", url, code, detail, status, want)
}

// kafkaTrap listens where a broker would and counts the connections it is
// offered; it speaks no Kafka.
func kafkaTrap(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), &n
}

var roleSeq atomic.Int64

// readOnlyRole creates a LOGIN role with no privileges and returns its name
// and a DSN that logs in as it (the test cluster trusts local logins). It
// is dropped, with its grants, when t ends.
func readOnlyRole(t *testing.T) (string, string) {
	t.Helper()
	name := fmt.Sprintf("reader_%d_%d", os.Getpid(), roleSeq.Add(1))
	if _, err := testenv.Conn(t).Exec(context.Background(), "CREATE ROLE "+name+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), testenv.PostgresDSN(t))
		if err != nil {
			t.Logf("dropping role %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP OWNED BY "+name+"; DROP ROLE "+name); err != nil {
			t.Logf("dropping role %s: %v", name, err)
		}
	})
	u, err := url.Parse(testenv.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(name)
	return name, u.String()
}

func sp(s string) *string { return &s }

// TestAPIRole runs the api role as an operator would: against a replica
// (--postgres-read) as a role that holds only `migrate --grant-read`'s
// grants, with --postgres pointing where no server answers, and with a
// broker address that counts the connections it gets. Until the schema is
// migrated and granted, /ready and reads answer 503 "migrating" (the role
// waits: it cannot migrate). Then it serves users, and no Kafka client
// ever connected.
func TestAPIRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := testenv.Schema(t)
	role, readerDSN := readOnlyRole(t)
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	broker, conns := kafkaTrap(t)
	cfg := app.Config{Role: app.RoleAPI, Store: store.Config{
		DSN:     "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?connect_timeout=1",
		ReadDSN: readerDSN, Schema: schema}}
	cfg.Kafka.Brokers = []string{broker}
	base := start(t, cfg)

	if code, _, detail := answer(t, base+"/health"); code != 200 {
		t.Errorf("/health = %d %q, want 200", code, detail)
	}
	waitAnswer(t, base+"/ready", 503, "migrating")
	if code, ctype, detail := answer(t, base+"/users/Ripley"); code != 503 || ctype != "application/problem+json" || !strings.Contains(detail, "migrating") {
		t.Errorf("/users/Ripley before migrations = %d %s %q, want a 503 problem saying migrating", code, ctype, detail)
	}

	// What `streamjoin migrate --grant-read` and the ingest role do.
	admin, err := store.Open(ctx, store.Config{DSN: testenv.PostgresDSN(t), Schema: schema}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ClaimOffsets(ctx, []store.TopicPartition{{Topic: "u", Partition: 0}}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2021, 5, 1, 0, 0, 0, 0, time.UTC)
	if err := admin.WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{{ID: "u1", Type: event.UserCreated, Username: sp("Ripley"), OrganizationName: sp("Nostromo"), ReceivedAt: at}},
		Orgs:    []event.Org{{Name: "Nostromo", Tier: sp("gold"), CreatedAt: at}},
		Offsets: []store.OffsetAdvance{{Topic: "u", Partition: 0, Generation: 1, To: 1}}}); err != nil {
		t.Fatal(err)
	}
	if code, _, detail := answer(t, base+"/ready"); code != 503 || !strings.Contains(detail, "migrating") {
		t.Errorf("/ready migrated but not granted = %d %q, want 503 migrating", code, detail)
	}
	if err := admin.GrantRead(ctx, role); err != nil {
		t.Fatal(err)
	}

	waitAnswer(t, base+"/ready", 200, "READY")
	resp, err := http.Get(base + "/users/Ripley")
	if err != nil {
		t.Fatal(err)
	}
	var got []store.Profile
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(got) != 1 || got[0].OrganizationTier == nil || *got[0].OrganizationTier != "gold" {
		t.Fatalf("/users/Ripley = %d %+v (%v), want Ripley of a gold organization", resp.StatusCode, got, err)
	}
	if code, _, _ := answer(t, base+"/metrics"); code != 200 {
		t.Errorf("/metrics = %d, want 200", code)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the api role opened %d connection(s) to the Kafka broker address, want none", n)
	}
}

// TestIngestRole: the ingest role joins its group and serves /health,
// /ready and /metrics; GET /users/… is a 404 problem, even for a user
// that exists.
func TestIngestRole(t *testing.T) {
	t.Parallel()
	broker, _ := testenv.Kafka(t)
	cfg := app.Config{Role: app.RoleIngest, Store: store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}}
	cfg.Kafka.Brokers = []string{broker}
	cfg.Ingest.CreateTopics = true
	base := start(t, cfg)
	waitAnswer(t, base+"/ready", 200, "READY")
	produceAll(t, broker, "user_events", []json.RawMessage{json.RawMessage(`{"id":"u1","event_type":"User Created","username":"Kim","user_email":"kim@x.org","user_type":"Admin","organization_name":"Nostromo","received_at":"2021-05-01 10:00:00"}`)}, "id")
	waitFor(t, "Kim written by the ingest role", func() bool {
		var n int
		err := testenv.Conn(t).QueryRow(context.Background(), "SELECT count(*) FROM "+cfg.Store.Schema+".users WHERE username = 'Kim'").Scan(&n)
		return err == nil && n == 1
	})
	if code, ctype, detail := answer(t, base+"/users/Kim"); code != 404 || ctype != "application/problem+json" {
		t.Errorf("/users/Kim on the ingest role = %d %s %q, want a 404 problem", code, ctype, detail)
	}
	for _, path := range []string{"/health", "/metrics"} {
		if code, _, detail := answer(t, base+path); code != 200 {
			t.Errorf("%s = %d %q, want 200", path, code, detail)
		}
	}
}

// TestNotInTheGroupYet: with PostgreSQL up and no broker answering, the
// schema gets migrated and /ready then says the consumer is not in its
// group, for the ingest and all roles.
func TestNotInTheGroupYet(t *testing.T) {
	t.Parallel()
	for _, role := range []app.Role{app.RoleIngest, app.RoleAll} {
		t.Run(string(role), func(t *testing.T) {
			t.Parallel()
			port, err := devenv.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			cfg := app.Config{Role: role, Store: store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}}
			cfg.Kafka.Brokers = []string{"127.0.0.1:" + strconv.Itoa(port)}
			base := start(t, cfg)
			waitAnswer(t, base+"/ready", 503, "not in the consumer group yet")
		})
	}
}

// TestRoleValidate: a role that is not one fails naming --role's setting;
// the api role needs no Kafka settings at all.
func TestRoleValidate(t *testing.T) {
	t.Parallel()
	pg := store.Config{DSN: "postgres://x@127.0.0.1/x"}
	for _, tt := range []struct {
		cfg  app.Config
		want string
	}{
		{app.Config{Role: "reader", Store: pg}, `role "reader": want all, ingest or api`},
		{app.Config{Role: app.RoleAPI, Store: pg}, ""},
		{app.Config{Role: app.RoleAPI, Store: store.Config{ReadDSN: pg.DSN}}, ""},
		{app.Config{Role: app.RoleAPI, Store: store.Config{ReadDSN: "postgres://x@h:notaport/x"}}, "postgres-read"},
		{app.Config{Role: app.RoleAll, Kafka: kafka.Config{Brokers: []string{"k:9092"}}, Store: store.Config{ReadDSN: pg.DSN}}, "postgres: a connection string is required"},
		{app.Config{Role: app.RoleIngest, Store: pg}, "brokers"},
		{app.Config{Store: pg}, "brokers"},
	} {
		err := tt.cfg.WithDefaults().Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)) {
			t.Errorf("role %q: Validate = %v, want %q", tt.cfg.Role, err, tt.want)
		}
	}
}
