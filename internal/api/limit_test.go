package api

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestInFlightLimit holds one request inside the handler and checks that the
// next one is refused at once with a 503 problem and Retry-After.
func TestInFlightLimit(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{MaxInFlight: 1}, &fakeUsers{}, nil, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := srv.limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/a", nil))
	}()
	<-entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/users/b", nil))
	close(release)
	wg.Wait()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/problem+json" || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %q Retry-After=%q, want 503 problem+json with Retry-After", rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Retry-After"))
	}
	// The slot is free again.
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/users/b", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("after release: %d", rec.Code)
	}
}

func TestHeadIsAllowed(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{}, &fakeUsers{}, nil, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/health", "/users/a", "/ready"} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("HEAD", path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("HEAD %s: %d, want 200", path, rec.Code)
		}
	}
}
