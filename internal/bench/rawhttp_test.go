package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRawConn holds the load generator's client to what a load test
// counts on: the status of each answer, the whole body read (so that the
// next answer on the connection parses), the token sent, and a
// connection the server closes replaced by a new one.
func TestRawConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth":
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		case "/missing":
			http.NotFound(w, r)
			return
		case "/close":
			w.Header().Set("Connection", "close")
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		w.Header().Set("Content-Length", "2048")
		_, _ = w.Write([]byte(strings.Repeat("x", 2048)))
	}))
	defer srv.Close()
	c, err := newRawConn(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, tc := range []struct {
		path    string
		status  int
		wantErr error
	}{
		{"/a", 200, nil},
		{"/auth", 200, nil},
		{"/missing", 404, nil},
		{"/b", 200, nil},
		{"/close", 200, nil},
		{"/c", 200, nil},
		{"/chunked", 0, errNoLength},
		{"/d", 200, nil},
	} {
		status, err := c.get(context.Background(), tc.path)
		if status != tc.status || !errors.Is(err, tc.wantErr) {
			t.Errorf("GET %s: status %d, error %v; want %d, %v", tc.path, status, err, tc.status, tc.wantErr)
		}
	}
}
