package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/store"
)

// countingUsers counts the queries and names that reach the real store.
// Until release is closed, each query waits for it, holding its lookup
// slot, so that requests arriving meanwhile queue behind the busy slots as
// they do under load.
type countingUsers struct {
	api.Users
	queries atomic.Int64
	names   atomic.Int64
	release chan struct{}
}

// TestConcurrentGetsEachGetTheirOwnAnswer sends many concurrent requests
// for different names through the API, checks that their lookups merged
// into fewer queries than requests, and checks each response against its
// own name.
func TestConcurrentGetsEachGetTheirOwnAnswer(t *testing.T) {
	t.Parallel()
	counter := &countingUsers{release: make(chan struct{})}
	var entered atomic.Int64
	ts := setupWith(t, setupOpts{
		cfg: api.Config{LookupTimeout: time.Minute},
		wrapUsers: func(u api.Users) api.Users {
			counter.Users = u
			return counter
		},
		wrapHandler: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				entered.Add(1)
				h.ServeHTTP(w, r)
			})
		},
	})
	want := map[string]int{"Snake": 2, "Big%20Boss": 1, "Zo%C3%AB": 1, "100%25": 1, "a_b": 1, "a%25": 0, "Gone": 0, "Nobody": 0}
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	type reply struct {
		path  string
		code  int
		users []map[string]any
		err   error
	}
	const requests = 400
	replies := make(chan reply, requests)
	for i := range requests {
		go func() {
			p := paths[i%len(paths)]
			r := reply{path: p}
			resp, err := http.Get(ts.URL + "/users/" + p)
			if r.err = err; err == nil {
				r.code = resp.StatusCode
				r.err = json.NewDecoder(resp.Body).Decode(&r.users)
				resp.Body.Close()
			}
			replies <- r
		}()
	}
	// Hold the first queries until every request is in the handler.
	for deadline := time.Now().Add(30 * time.Second); entered.Load() < requests; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("only %d of %d requests reached the handler", entered.Load(), requests)
			break
		}
	}
	close(counter.release)
	for range requests {
		r := <-replies
		if r.err != nil || r.code != http.StatusOK || len(r.users) != want[r.path] {
			t.Errorf("GET /users/%s = %d with %d users (%v), want 200 with %d", r.path, r.code, len(r.users), r.err, want[r.path])
			continue
		}
		name, _ := url.PathUnescape(r.path)
		for _, u := range r.users {
			if u["username"] != name {
				t.Errorf("GET /users/%s returned user %v: another request's answer", r.path, u["username"])
			}
		}
	}
	q, n := counter.queries.Load(), counter.names.Load()
	t.Logf("%d requests, %d queries, %d names queried", requests, q, n)
	if q < 1 || q >= requests/4 {
		t.Errorf("%d requests made %d queries, want at least 1 and fewer than %d: lookups did not merge", requests, q, requests/4)
	}
}

func (c *countingUsers) UsersByNames(ctx context.Context, names []string, limit int) (map[string][]store.Profile, error) {
	c.queries.Add(1)
	c.names.Add(int64(len(names)))
	<-c.release
	return c.Users.UsersByNames(ctx, names, limit)
}
