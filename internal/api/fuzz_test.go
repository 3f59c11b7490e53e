package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/streamjoin/streamjoin/internal/store"
)

// fakeUsers records what reaches the store; the fuzz target checks the
// handler, not PostgreSQL (which the integration tests cover).
type fakeUsers struct{ last string }

func (f *fakeUsers) UsersByNames(_ context.Context, names []string, _ int) (map[string][]store.Profile, error) {
	f.last = names[len(names)-1]
	return nil, nil
}
func (f *fakeUsers) Ping(context.Context) error { return nil }

// FuzzUsersPath sends arbitrary paths: the handler never panics or answers
// 5xx, and only non-empty, valid UTF-8 names within the limit reach the store.
func FuzzUsersPath(f *testing.F) {
	for _, s := range []string{"Snake", "Big%20Boss", "%FF", "a%2Fb", "%00", "100%25", "%", "..", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seg string) {
		users := &fakeUsers{}
		srv, err := New(Config{}, users, nil, nil, discard())
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("GET", "http://x/users/"+seg, nil)
		if err != nil {
			return // not a URL a client could send
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("path %q: status %d: %s", seg, rec.Code, rec.Body)
		}
		if rec.Code == 200 {
			n := users.last
			if n == "" || len(n) > 256 || !utf8.ValidString(n) || strings.ContainsRune(n, 0) {
				t.Fatalf("path %q: name %q reached the store", seg, n)
			}
		} else if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" && rec.Code != 301 && rec.Code != 307 && rec.Code != 308 {
			t.Fatalf("path %q: status %d with content type %q", seg, rec.Code, ct)
		}
	})
}
