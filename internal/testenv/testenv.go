// Package testenv gives integration tests real infrastructure: one private
// PostgreSQL cluster per test binary, shared by its tests, and a fresh kfake
// broker per test. ScrapeMetrics reads a process's /metrics, so that tests
// can assert on its counters, where an absent series is an error, not 0.
//
// Set STREAMJOIN_TEST_POSTGRES to a DSN to use an existing server instead.
// Each test gets its own schema, so tests may run in parallel.
package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/store"
)

var (
	pgOnce    sync.Once
	pgDSN     string
	pgErr     error
	pgSrv     *devenv.Postgres
	pgDir     string
	schemaSeq atomic.Int64
)

// Main runs the tests of a package and then stops the shared PostgreSQL, if
// one was started. Call it from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if pgSrv != nil {
		_ = pgSrv.Stop()
		_ = os.RemoveAll(pgDir)
	}
	return code
}

// Logger returns a logger that writes through t.Log, at debug level when
// -v is set and warn otherwise.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// PostgresDSN returns the DSN of the shared test server, starting it on first
// use. A test fails, not skips, when PostgreSQL cannot be started: `make
// test` installs it.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		if dsn := os.Getenv("STREAMJOIN_TEST_POSTGRES"); dsn != "" {
			pgDSN = dsn
			return
		}
		// /tmp rather than t.TempDir: the server outlives the test, and when
		// running as root the postgres user must be able to reach the dir.
		pgDir, pgErr = os.MkdirTemp("", "streamjoin-pgtest-")
		if pgErr != nil {
			return
		}
		_ = os.Chmod(pgDir, 0o755)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		pgSrv, pgErr = devenv.StartPostgres(ctx, devenv.PostgresConfig{Dir: filepath.Join(pgDir, "data"), Fast: true}, slog.New(slog.DiscardHandler))
		if pgErr == nil {
			pgDSN = pgSrv.DSN
		}
	})
	if pgErr != nil {
		t.Fatalf("starting test PostgreSQL: %v", pgErr)
	}
	return pgDSN
}

// Schema returns a new, empty schema name for t and drops the schema when t
// ends.
func Schema(t testing.TB) string {
	t.Helper()
	dsn := PostgresDSN(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), schemaSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Logf("dropping schema %s: %v", name, err)
		}
	})
	return name
}

// Conn opens a plain connection to the test server, closed when t ends.
func Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, PostgresDSN(t))
	if err != nil {
		t.Fatalf("connecting to test PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Kafka starts a fresh single-broker kfake cluster for t, closed when t ends,
// and returns its address.
func Kafka(t testing.TB, opts ...kfake.Opt) (string, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0], c
}

// Store opens a store on a fresh, migrated schema of the test server, closed
// when t ends.
func Store(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: PostgresDSN(t), Schema: Schema(t)}, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}
