package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// switchUsers reads a real store, up or down (one on a port where no
// PostgreSQL listens) as down says.
type switchUsers struct {
	up, down *store.Store
	isDown   atomic.Bool
}

func (u *switchUsers) pick() *store.Store {
	if u.isDown.Load() {
		return u.down
	}
	return u.up
}

func (u *switchUsers) UsersByNames(ctx context.Context, names []string, limit int) (map[string][]store.Profile, error) {
	return u.pick().UsersByNames(ctx, names, limit)
}
func (u *switchUsers) Ping(ctx context.Context) error { return u.pick().Ping(ctx) }

func newSwitchUsers(t *testing.T) *switchUsers {
	t.Helper()
	down, err := store.Open(context.Background(), store.Config{DSN: "postgres://x@127.0.0.1:1/x?connect_timeout=1", QueryTimeout: time.Second}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	return &switchUsers{up: testenv.Store(t), down: down}
}

// readyState is what a test can set of a server's readiness.
type readyState struct {
	users    *switchUsers
	joined   atomic.Bool
	migrated chan struct{}
	srv      *api.Server
	base     string
}

func newReadyServer(t *testing.T, logger *slog.Logger) *readyState {
	t.Helper()
	st := &readyState{users: newSwitchUsers(t), migrated: make(chan struct{})}
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0"}, st.users, st.joined.Load, prometheus.NewRegistry(), logger)
	if err != nil {
		t.Fatal(err)
	}
	srv.StartAfter(st.migrated)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	st.srv, st.base = srv, ts.URL
	return st
}

// probe GETs /ready and returns its status and detail.
func probe(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("/ready: %s: %v", body, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, fmt.Sprint(p["status"])
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("/ready %d: content type %q, want application/problem+json", resp.StatusCode, ct)
	}
	return resp.StatusCode, fmt.Sprint(p["detail"])
}

// TestReadyReasons walks a server through a start and a stop: each reason
// /ready gives, in the order it checks them, and 200 when all is well.
func TestReadyReasons(t *testing.T) {
	t.Parallel()
	s := newReadyServer(t, testenv.Logger(t))
	for _, step := range []struct {
		name   string
		change func()
		status int
		detail string
	}{
		{"postgres down at start", func() { s.users.isDown.Store(true) }, 503, "postgres unreachable"},
		{"postgres up, schema not migrated", func() { s.users.isDown.Store(false) }, 503, "migrating: the schema is not migrated yet"},
		{"migrated, not joined", func() { close(s.migrated) }, 503, "not in the consumer group yet"},
		{"joined", func() { s.joined.Store(true) }, 200, "READY"},
		{"postgres lost", func() { s.users.isDown.Store(true) }, 503, "postgres unreachable"},
		{"postgres back", func() { s.users.isDown.Store(false) }, 200, "READY"},
		{"left the group", func() { s.joined.Store(false) }, 503, "not in the consumer group yet"},
		{"shutting down", func() { s.srv.Stopping() }, 503, "shutting down"},
		{"shutting down beats everything", func() { s.joined.Store(true); s.users.isDown.Store(true) }, 503, "shutting down"},
	} {
		step.change()
		if status, detail := probe(t, s.base); status != step.status || detail != step.detail {
			t.Errorf("%s: /ready = %d %q, want %d %q", step.name, status, detail, step.status, step.detail)
		}
	}
}

// records counts what a logger was given, by level and message.
type records struct {
	mu sync.Mutex
	n  map[string]int // "LEVEL message"
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[rec.Level.String()+" "+rec.Message]++
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.n
	r.n = map[string]int{}
	return n
}

// TestReadyLogsChangesOnly: a probe polling /ready logs each change of its
// answer once, not each 503; a failed read is still a WARN per request.
func TestReadyLogsChangesOnly(t *testing.T) {
	t.Parallel()
	rec := &records{n: map[string]int{}}
	s := newReadyServer(t, slog.New(rec))
	close(s.migrated)
	const probes = 20
	for _, step := range []struct {
		name   string
		change func()
		want   map[string]int
	}{
		{"not joined", func() {}, map[string]int{"INFO not ready": 1}},
		{"joined", func() { s.joined.Store(true) }, map[string]int{"INFO ready": 1}},
		{"postgres lost", func() { s.users.isDown.Store(true) }, map[string]int{"WARN not ready": 1}},
		{"postgres back", func() { s.users.isDown.Store(false) }, map[string]int{"INFO ready": 1}},
		{"shutting down", func() { s.srv.Stopping() }, map[string]int{"INFO not ready": 1}},
	} {
		step.change()
		for range probes {
			probe(t, s.base)
		}
		if got := rec.take(); !equal(got, step.want) {
			t.Errorf("%s: %d probes logged %v, want %v", step.name, probes, got, step.want)
		}
	}
	s.users.isDown.Store(true)
	for range 3 {
		resp, err := http.Get(s.base + "/users/Snake")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("GET /users/Snake with postgres down: %d, want 503", resp.StatusCode)
		}
	}
	if got := rec.take(); got["WARN request failed"] != 3 {
		t.Errorf("3 failed reads logged %v, want 3 WARN request failed", got)
	}
}

func equal(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestProbesOnly: the ingest role's server answers /health, /ready and
// /metrics, and GET /users/… is a 404 problem that never reaches the store.
func TestProbesOnly(t *testing.T) {
	t.Parallel()
	users := newSwitchUsers(t)
	users.isDown.Store(true) // a read that reached the store would be a 503
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0"}, users, nil, prometheus.NewRegistry(), testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.ServeProbesOnly()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	checkProblem(t, "GET", ts.URL+"/users/Snake", http.StatusNotFound)
	for path, want := range map[string]int{"/health": 200, "/metrics": 200, "/ready": 503} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	users.isDown.Store(false)
	if status, detail := probe(t, ts.URL); status != 200 {
		t.Errorf("/ready with postgres up = %d %q, want 200", status, detail)
	}
}
