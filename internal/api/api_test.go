package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func sp(s string) *string { return &s }

// setup serves the API over a real store holding a few users.
func setup(t *testing.T, joined *atomic.Bool) *httptest.Server {
	t.Helper()
	var joinedFn func() bool
	if joined != nil {
		joinedFn = joined.Load
	}
	return setupWith(t, setupOpts{joined: joinedFn})
}

// setupOpts varies setupWith's server; zero fields take setup's choices.
type setupOpts struct {
	cfg         api.Config                      // Addr and MaxResults are set
	wrapUsers   func(api.Users) api.Users       // what the API reads, given the store
	wrapHandler func(http.Handler) http.Handler // what serves, given the API's handler
	joined      func() bool
	logger      *slog.Logger
}

// setupWith is setup with opts.
func setupWith(t *testing.T, opts setupOpts) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	at := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	names := []string{"Snake", "Snake", "Big Boss", "Zoë", "O'Neil", "100%", "a_b", `back\slash`, "a/b", "Gone"}
	var us []event.User
	for i, n := range names {
		us = append(us, event.User{ID: string(rune('a' + i)), Type: event.UserCreated, Username: sp(n), UserType: sp("Admin"), OrganizationName: sp("Acme"), ReceivedAt: at, Pos: event.Position{Offset: int64(i)}})
	}
	us = append(us, event.User{ID: string(rune('a' + len(names) - 1)), Type: event.UserDeleted, ReceivedAt: at.Add(time.Hour), Pos: event.Position{Offset: int64(len(names))}})
	if _, err := st.ClaimOffsets(ctx, []store.TopicPartition{{Topic: "u", Partition: 0}}); err != nil {
		t.Fatal(err)
	}
	b := &store.Batch{UserTopic: "u", OrgTopic: "o", Users: us,
		Orgs:    []event.Org{{Name: "Acme", Tier: sp("gold"), CreatedAt: at}},
		Offsets: []store.OffsetAdvance{{Topic: "u", Partition: 0, Generation: 1, To: int64(len(us))}}}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	var users api.Users = st
	if opts.wrapUsers != nil {
		users = opts.wrapUsers(st)
	}
	if opts.logger == nil {
		opts.logger = testenv.Logger(t)
	}
	cfg := opts.cfg
	cfg.Addr, cfg.MaxResults = "127.0.0.1:0", 10
	srv, err := api.New(cfg, users, opts.joined, nil, opts.logger)
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	if opts.wrapHandler != nil {
		h = opts.wrapHandler(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// get requests url and checks the answer against openapi.json.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, h, body := doChecked(t, req)
	return code, h.Get("Content-Type"), string(body)
}

func TestGetUsers(t *testing.T) {
	t.Parallel()
	ts := setup(t, nil)
	tests := []struct {
		path  string
		names int
	}{
		{"/users/Snake", 2},
		{"/users/snake", 0},
		{"/users/Big%20Boss", 1},
		{"/users/Zo%C3%AB", 1},
		{"/users/O'Neil", 1},
		{"/users/O%27Neil", 1},
		{"/users/100%25", 1},
		{"/users/10%25", 0},
		{"/users/a_b", 1},
		{"/users/a%25", 0},
		{"/users/back%5Cslash", 1},
		{"/users/a%2Fb", 1},
		{"/users/Gone", 0},
		{"/users/Nobody", 0},
	}
	for _, tt := range tests {
		code, ctype, body := get(t, ts.URL+tt.path)
		if code != http.StatusOK || ctype != "application/json" {
			t.Errorf("GET %s: %d %s %s", tt.path, code, ctype, body)
			continue
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("GET %s: %v: %s", tt.path, err, body)
		}
		if len(got) != tt.names {
			t.Errorf("GET %s: %d users, want %d: %s", tt.path, len(got), tt.names, body)
		}
		if tt.names == 0 && strings.TrimSpace(body) != "[]" {
			t.Errorf("GET %s: no match must be [], got %s", tt.path, body)
		}
		for _, u := range got {
			for _, k := range []string{"id", "username", "user_type", "organization_name", "organization_tier"} {
				if _, ok := u[k]; !ok {
					t.Errorf("GET %s: element lacks %q: %v", tt.path, k, u)
				}
			}
			if u["organization_tier"] != "gold" {
				t.Errorf("GET %s: tier = %v, want gold (the join)", tt.path, u["organization_tier"])
			}
		}
	}
}

// doResp sends req, checks the answer against openapi.json and returns it
// with its body read.
func doResp(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	api.CheckAgainstSpec(t, req, resp.StatusCode, resp.Header, body)
	return resp, body
}

// checkProblem requests url and checks that the answer is a problem
// document with wantStatus, and, for a 503, a Retry-After.
func checkProblem(t *testing.T, method, url string, wantStatus int) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := doResp(t, req)
	if wantStatus == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s %s: 503 without Retry-After", method, url)
	}
	if resp.StatusCode != wantStatus {
		t.Errorf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, wantStatus, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s %s: content type %q, want application/problem+json", method, url, ct)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != wantStatus || p.Title == "" || p.Type == "" {
		t.Errorf("%s %s: not a problem document: %s (%v)", method, url, body, err)
	}
}

func TestErrorsAreProblems(t *testing.T) {
	t.Parallel()
	ts := setup(t, nil)
	checkProblem(t, "GET", ts.URL+"/users/"+strings.Repeat("x", 257), http.StatusBadRequest)
	checkProblem(t, "GET", ts.URL+"/users/"+strings.Repeat("x", 50<<10), http.StatusBadRequest)
	checkProblem(t, "GET", ts.URL+"/users/%FF", http.StatusBadRequest)
	checkProblem(t, "GET", ts.URL+"/users/a%00b", http.StatusBadRequest)
	checkProblem(t, "GET", ts.URL+"/nope", http.StatusNotFound)
	checkProblem(t, "GET", ts.URL+"/users", http.StatusBadRequest)
	checkProblem(t, "GET", ts.URL+"/users/", http.StatusNotFound)
	checkProblem(t, "POST", ts.URL+"/users/Snake", http.StatusMethodNotAllowed)
	// 256 bytes is still fine.
	if code, _, body := get(t, ts.URL+"/users/"+strings.Repeat("x", 256)); code != http.StatusOK {
		t.Errorf("256-byte name: %d %s", code, body)
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	var joined atomic.Bool
	ts := setup(t, &joined)
	if code, _, body := get(t, ts.URL+"/health"); code != 200 || strings.TrimSpace(body) != `{"status":"UP"}` {
		t.Errorf("/health: %d %s", code, body)
	}
	checkProblem(t, "GET", ts.URL+"/ready", http.StatusServiceUnavailable)
	joined.Store(true)
	if code, _, body := get(t, ts.URL+"/ready"); code != 200 {
		t.Errorf("/ready when joined: %d %s", code, body)
	}
}

// TestDatabaseDown points the API at a port where no PostgreSQL listens:
// reads and /ready answer 503 problem+json quickly instead of hanging.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	st, err := store.Open(context.Background(), store.Config{DSN: "postgres://x@127.0.0.1:1/x?connect_timeout=1", QueryTimeout: time.Second}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := api.New(api.Config{}, st, nil, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	checkProblem(t, "GET", ts.URL+"/users/Snake", http.StatusServiceUnavailable)
	checkProblem(t, "GET", ts.URL+"/ready", http.StatusServiceUnavailable)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  api.Config
		want string
	}{
		{api.Config{Addr: "nope"}, "http-addr"},
		{api.Config{MaxNameBytes: -1}, "max-name-bytes"},
		{api.Config{ReadTimeout: -time.Second}, "http-read-timeout"},
		{api.Config{MaxBatchNames: -1}, "max-batch-names"},
	} {
		_, err := api.New(tt.cfg, nil, nil, nil, testenv.Logger(t))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tt.cfg, err, tt.want)
		}
	}
}
