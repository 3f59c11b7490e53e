package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/streamjoin/streamjoin/internal/store"
)

func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"problem", &problem{status: http.StatusBadRequest, detail: "bad"}, http.StatusBadRequest},
		{"wrapped problem", fmt.Errorf("x: %w", &problem{status: http.StatusNotFound}), http.StatusNotFound},
		{"database refused", fmt.Errorf("querying: %w", refused), http.StatusServiceUnavailable},
		{"lookup timed out", fmt.Errorf("waiting for the user lookup: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{"statement timeout", &pgconn.PgError{Code: pgerrcode.QueryCanceled}, http.StatusServiceUnavailable},
		{"serialization failure", &pgconn.PgError{Code: pgerrcode.SerializationFailure}, http.StatusServiceUnavailable},
		{"undefined column", &pgconn.PgError{Code: pgerrcode.UndefinedColumn}, http.StatusInternalServerError},
		{"encoding", errors.New(`encoding user "far": received_at year 10000 is outside RFC 3339`), http.StatusInternalServerError},
		{"fenced", &store.FencedError{}, http.StatusInternalServerError},
		{"panic in a lookup", &panicError{what: "user lookup", value: "boom"}, http.StatusInternalServerError},
		{"panic whose value looks like an outage", &panicError{what: "handler", value: refused}, http.StatusInternalServerError},
		{"canceled by someone else", fmt.Errorf("x: %w", context.Canceled), http.StatusInternalServerError},
	} {
		if got, _ := httpStatus(tt.err); got != tt.want {
			t.Errorf("%s: httpStatus(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// rawRequest sends line and a Host header on a fresh connection to addr and
// returns the status and content type of the answer.
func rawRequest(t *testing.T, addr, line string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "%s\r\nHost: x\r\nConnection: close\r\n\r\n", line); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60s: %v", line, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

// TestWhatNetHTTPAnswersItself runs the real server (Run, with its
// MaxHeaderBytes) and sends requests that net/http rejects before any
// handler runs. Those answers are text/plain and out of the handler's
// reach (see the package doc); this test records them, so that a Go release
// that changes them shows here. Requests that reach the handler, however
// malformed, get problem documents.
func TestWhatNetHTTPAnswersItself(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{Addr: "127.0.0.1:0"}, &fakeUsers{}, nil, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for _, tt := range []struct {
		line  string
		code  int
		ctype string
	}{
		// net/http's own answers.
		{"GET /users/% HTTP/1.1", http.StatusBadRequest, "text/plain; charset=utf-8"},
		{"GET /users/%zz HTTP/1.1", http.StatusBadRequest, "text/plain; charset=utf-8"},
		{"GET /users/" + strings.Repeat("x", 100<<10) + " HTTP/1.1", http.StatusRequestHeaderFieldsTooLarge, "text/plain; charset=utf-8"},
		// The handler's.
		{"GET /users/" + strings.Repeat("x", maxHeaderBytes-1024) + " HTTP/1.1", http.StatusBadRequest, "application/problem+json"},
		{"GET /users/%25 HTTP/1.1", http.StatusOK, "application/json"},
		{"GET /users/%FF HTTP/1.1", http.StatusBadRequest, "application/problem+json"},
		{"BREW /users/a HTTP/1.1", http.StatusMethodNotAllowed, "application/problem+json"},
		{"GET /users/ HTTP/1.1", http.StatusNotFound, "application/problem+json"},
	} {
		code, ctype := rawRequest(t, addr.String(), tt.line)
		if code != tt.code || ctype != tt.ctype {
			t.Errorf("%.60s: %d %q, want %d %q", tt.line, code, ctype, tt.code, tt.ctype)
		}
	}
}
