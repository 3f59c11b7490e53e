package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

var dbSeq atomic.Int64

// newDatabase creates a database on the test server, dropped when t ends,
// and returns a DSN for it: a stand-in for a read replica that, unlike one,
// differs from the primary, so a read shows which one it went to.
func newDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("replica_%d_%d", os.Getpid(), dbSeq.Add(1))
	if _, err := testenv.Conn(t).Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), testenv.PostgresDSN(t))
		if err != nil {
			t.Logf("dropping database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(testenv.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// writeUser writes one live user named name through st.
func writeUser(t *testing.T, st *store.Store, id, name string) {
	t.Helper()
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0})
	b := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user(id, event.UserCreated, name, "", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)}}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// TestReadDSNServesTheReads: with ReadDSN set, writes go to DSN and the
// API's reads to ReadDSN. The two are different databases here, each
// holding a different user, so each read shows where it went.
func TestReadDSNServesTheReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := testenv.Schema(t)
	primaryDSN, replicaDSN := testenv.PostgresDSN(t), newDatabase(t)
	replica, err := store.Open(ctx, store.Config{DSN: replicaDSN, Schema: schema}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	if _, err := replica.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	writeUser(t, replica, "r1", "on-replica")

	st, err := store.Open(ctx, store.Config{DSN: primaryDSN, ReadDSN: replicaDSN, Schema: schema}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	writeUser(t, st, "p1", "on-primary")
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"on-primary": 0, "on-replica": 1} {
		one, err := st.UsersByName(ctx, name, 10)
		if err != nil {
			t.Fatal(err)
		}
		many, err := st.UsersByNames(ctx, []string{name}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != want || len(many[name]) != want {
			t.Errorf("%s: UsersByName %d rows, UsersByNames %d, want %d (reads must go to ReadDSN)", name, len(one), len(many[name]), want)
		}
	}
}

// TestOpenReadUsesOnlyTheReadDSN: OpenRead, the api role's store, reads
// ReadDSN and never connects to DSN (which here no server answers); its
// sessions are read-only, so it cannot migrate.
func TestOpenReadUsesOnlyTheReadDSN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := setup(t)
	writeUser(t, st, "u1", "Ripley")
	rd, err := store.OpenRead(ctx, store.Config{DSN: "postgres://x@127.0.0.1:1/x?connect_timeout=1", ReadDSN: testenv.PostgresDSN(t), Schema: st.Schema()}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if err := rd.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if ps, err := rd.UsersByName(ctx, "Ripley", 10); err != nil || len(ps) != 1 {
		t.Fatalf("UsersByName = %v, %v; want Ripley", ps, err)
	}
	_, err = rd.Migrate(ctx)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.ReadOnlySQLTransaction {
		t.Fatalf("Migrate through OpenRead = %v, want SQLSTATE 25006", err)
	}
}

// TestSchemaVersion: 0 before the schema exists, the binary's latest after
// Migrate.
func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, err := st.SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("SchemaVersion before Migrate = %d, %v; want 0", v, err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := st.SchemaVersion(ctx); err != nil || v != store.LatestMigration() || v < 6 {
		t.Fatalf("SchemaVersion after Migrate = %d, %v; want %d", v, err, store.LatestMigration())
	}
}
