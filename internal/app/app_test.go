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
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/produce"
	"github.com/streamjoin/streamjoin/internal/sample"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type running struct {
	base   string
	broker string
	schema string
	done   chan error
	cancel context.CancelFunc
}

// setup runs the whole process (pipeline and API) against kfake and the test
// PostgreSQL, and waits until /ready answers 200.
func setup(t *testing.T) *running {
	t.Helper()
	broker, _ := testenv.Kafka(t)
	cfg := app.Config{Store: store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}}
	cfg.Changelog.Topic = "user_profiles"
	cfg.Changelog.EnrichedTopic = "user_events_enriched"
	cfg.Changelog.ActivityTopic = "org_activity"
	cfg.Kafka.Brokers = []string{broker}
	cfg.Ingest.CreateTopics = true
	// Partitions the sample leaves empty stop holding the watermark back
	// soon (TestReadyShowsTheWatermarks).
	cfg.Ingest.IdleTimeout = 300 * time.Millisecond
	cfg.Ingest.WatermarkInterval = 50 * time.Millisecond
	cfg.API.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	r := &running{broker: broker, schema: cfg.Store.Schema, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- app.Run(ctx, cfg, testenv.Logger(t), func(a net.Addr) { addrc <- a }) }()
	select {
	case a := <-addrc:
		r.base = "http://" + a.String()
	case err := <-r.done:
		t.Fatalf("app.Run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("API did not start")
	}
	t.Cleanup(func() { r.stop(t) })
	waitFor(t, "ready", func() bool {
		resp, err := http.Get(r.base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("app.Run after shutdown: %v, want nil", err)
		}
	case <-time.After(45 * time.Second):
		t.Error("app.Run did not return within 45s of shutdown")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func produceAll(t *testing.T, broker, topic string, values []json.RawMessage, key string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := produce.Records(context.Background(), cl, topic, values, key, nil); err != nil {
		t.Fatal(err)
	}
}

func (r *running) users(t *testing.T, name string) []store.Profile {
	t.Helper()
	resp, err := http.Get(r.base + "/users/" + url.PathEscape(name))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /users/%s: %d %s", name, resp.StatusCode, body)
	}
	var ps []store.Profile
	if err := json.Unmarshal(body, &ps); err != nil {
		t.Fatalf("GET /users/%s: %v", name, err)
	}
	return ps
}

// summary renders a user list as "id:user_type:org:tier" lines, sorted.
func summary(ps []store.Profile) string {
	s := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s:%s:%s:%s", p.ID, s(p.UserType), s(p.OrganizationName), s(p.OrganizationTier)))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestSampleThroughTheAPI loads the dev sample and checks every rule it
// demonstrates, through HTTP.
func TestSampleThroughTheAPI(t *testing.T) {
	t.Parallel()
	r := setup(t)
	produceAll(t, r.broker, "user_events", sample.UserEvents, "received_at")
	produceAll(t, r.broker, "org_events", sample.OrgEvents, "created_at")
	want := map[string]string{
		"Ripley":        "u-ripley:Admin:Nostromo:gold",      // newest update wins
		"Dallas":        "",                                  // delete arrived before create
		"Kane":          "",                                  // older create after delete does not resurrect
		"Lambert":       "u-lambert:Creator:Sulaco:platinum", // newer create after delete does
		"Hicks":         "u-hicks:User:Sulaco:platinum",      // update of an unseen id is an upsert
		"Bishop":        "u-bishop-341:Creator:Sulaco:platinum u-bishop-ash:Admin:Nostromo:gold",
		"Hudson":        "u-hudson:User:Sulaco:platinum",   // duplicate applied once
		"Vasquez":       "u-vasquez:Admin:Sulaco:platinum", // equal time: Updated beats Created
		"Naomi Nagata":  "u-naomi:Creator:Rocinante:gold",  // late older update loses
		"Holden":        "u-holden:Admin:Rocinante:gold",   // RFC 3339; org arrived later
		"Mal":           "u-mal:Admin:Serenity:null",       // org never arrives
		"Zoë Washburne": "u-zoe:User:Serenity:null",
		"O'Neil 100%":   "u-oneil:User:Sulaco:platinum",
		"O'Neil 10%":    "",
		"Parker":        "", // invalid: unknown event type
		"Brett":         "", // invalid: bad timestamp
	}
	waitFor(t, "the sample to be applied", func() bool {
		return summary(r.users(t, "Lambert")) == want["Lambert"] && summary(r.users(t, "Holden")) == want["Holden"] && summary(r.users(t, "Naomi Nagata")) == want["Naomi Nagata"]
	})
	// Wait until every sample record's offset is committed, then check all.
	r.waitRecords(t, map[records]float64{
		{"user_events", "dead_letter"}: sample.InvalidUserEvents,
		{"org_events", "dead_letter"}:  sample.InvalidOrgEvents,
		{"user_events", "valid"}:       float64(len(sample.UserEvents) - sample.InvalidUserEvents),
		{"org_events", "valid"}:        float64(len(sample.OrgEvents) - sample.InvalidOrgEvents),
	})
	for name, w := range want {
		if got := summary(r.users(t, name)); got != w {
			t.Errorf("GET /users/%s = %q, want %q", name, got, w)
		}
	}
}

// records is a series of streamjoin_ingest_records_total.
type records struct{ topic, outcome string }

// waitRecords waits until every series of streamjoin_ingest_records_total in
// want exists and has its value. A series that never appears fails the test
// with the scrape's error, so a renamed metric or label cannot pass.
func (r *running) waitRecords(t *testing.T, want map[records]float64) {
	t.Helper()
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for {
		last = r.checkRecords(want)
		if last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records counted after 30s: %v", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *running) checkRecords(want map[records]float64) error {
	m, err := testenv.ScrapeMetrics(r.base+"/metrics", 5*time.Second)
	if err != nil {
		return err
	}
	for k, w := range want {
		v, err := m.Value("streamjoin_ingest_records_total", map[string]string{"topic": k.topic, "outcome": k.outcome})
		if err != nil {
			return err
		}
		if v != w {
			return fmt.Errorf("%s records of %s = %v, want %v", k.outcome, k.topic, v, w)
		}
	}
	return nil
}

// TestSeedData runs the seed's own sample through the pipeline, when the
// seed is present next to the repository; it is optional.
func TestSeedData(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "..", "shared", "seed", "user_events.json")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("seed data not present (%v)", err)
	}
	defer f.Close()
	values, err := produce.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	r := setup(t)
	produceAll(t, r.broker, "user_events", values, "received_at")
	// The empty and null usernames are the seed's two dead letters.
	r.waitRecords(t, map[records]float64{
		{"user_events", "valid"}:       float64(len(values) - 2),
		{"user_events", "dead_letter"}: 2,
	})
	// Two users called Snake in different organizations; deleted users are
	// gone; the newest update wins.
	checks := map[string]int{"Snake": 2, "Gumba": 0, "Zeus": 0, "Apollo": 0, "Athena": 0, "LeBron James": 0, "Big Boss": 0, "Ocelot": 1, "Alyx": 1, "Peach": 1, "Freeman": 1}
	for name, n := range checks {
		if got := r.users(t, name); len(got) != n {
			t.Errorf("seed: GET /users/%s: %d users, want %d", name, len(got), n)
		}
	}
	if p := r.users(t, "Ocelot"); len(p) == 1 && (p[0].UserType == nil || *p[0].UserType != "User") {
		t.Errorf("seed: Ocelot should be the live 'Metal Gear Solid 5' user updated to User: %+v", p)
	}
	if p := r.users(t, "Freeman"); len(p) == 1 && (p[0].UserEmail == nil || *p[0].UserEmail != "gordon@blackmesa.org") {
		t.Errorf("seed: Freeman's newest email should win: %+v", p)
	}
}

// The API's wait for a lookup is bounded by --query-timeout, the store's.
func TestLookupTimeoutFollowsQueryTimeout(t *testing.T) {
	t.Parallel()
	cfg := app.Config{Store: store.Config{QueryTimeout: 5 * time.Second}}.WithDefaults()
	if cfg.API.LookupTimeout != 5*time.Second {
		t.Errorf("API.LookupTimeout = %s, want the store's query timeout 5s", cfg.API.LookupTimeout)
	}
	if d := (app.Config{}).WithDefaults().API.LookupTimeout; d != store.DefaultQueryTimeout {
		t.Errorf("default API.LookupTimeout = %s, want %s", d, store.DefaultQueryTimeout)
	}
}

// The pool must hold a state lane and a log lane per writer.
func TestConfigRoomForLanes(t *testing.T) {
	for _, tc := range []struct {
		writers  int
		maxConns int32
		ok       bool
	}{
		{2, 4, true},
		{2, 3, false},
		{4, 8, true},
		{5, 8, false},
	} {
		cfg := app.Config{}
		cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
		cfg.Store.DSN = "postgres://x@127.0.0.1/db"
		cfg.Ingest.Writers = tc.writers
		cfg.Store.MaxConns = tc.maxConns
		err := cfg.WithDefaults().Validate()
		if (err == nil) != tc.ok {
			t.Errorf("writers %d, pg-max-conns %d: Validate = %v, want ok=%v", tc.writers, tc.maxConns, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "writers") {
			t.Errorf("error %q does not name writers", err)
		}
	}
}

// readTopicUntil reads topic read_committed from its start, passing each
// record to each, until matched returns "" (a difference otherwise, shown
// if 30 s pass first, under what).
func readTopicUntil(t *testing.T, broker, topic, what string, each func(*kgo.Record), matched func() string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for diff := matched(); diff != ""; diff = matched() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s never matched:\n%s", what, diff)
		}
		fs.EachRecord(each)
	}
}
