package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	code, h, _ := rawExchange(t, addr, line+"\r\nHost: x\r\nConnection: close\r\n\r\n")
	return code, h.Get("Content-Type")
}

// rawExchange writes raw on a fresh connection to addr and returns the
// answer.
func rawExchange(t *testing.T, addr, raw string) (int, http.Header, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60s: %v", raw, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// TestWhatNetHTTPAnswersItself runs the real server (Run, with its
// MaxHeaderBytes and listener) and sends requests that net/http rejects
// before any handler runs. net/http answers those in text/plain, out of the
// handler's reach; Run's listener rewrites them into problem documents
// (rawerrors.go). A Go release that changes net/http's canned answers shows
// here as text/plain. Requests that reach the handler, however malformed,
// get problem documents from it.
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
		// net/http's own answers, rewritten.
		{"GET /users/% HTTP/1.1", http.StatusBadRequest, "application/problem+json"},
		{"GET /users/%zz HTTP/1.1", http.StatusBadRequest, "application/problem+json"},
		{"GET /users/a b HTTP/1.1", http.StatusBadRequest, "application/problem+json"},
		{"GET /users/" + strings.Repeat("x", 100<<10) + " HTTP/1.1", http.StatusRequestHeaderFieldsTooLarge, "application/problem+json"},
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
	// Whole requests net/http refuses: each answer must be a Problem of the
	// spec, with the status and a reason.
	for _, tt := range []struct {
		name, raw string
		code      int
		detail    string
	}{
		{"bad escape", "GET /users/% HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest, "the request is malformed"},
		{"no Host", "GET /users/a HTTP/1.1\r\n\r\n", http.StatusBadRequest, "missing required Host header"},
		{"100 KB path", "GET /users/" + strings.Repeat("x", 100<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge, "over 65536 bytes"},
		{"huge header", "GET /users/a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("y", 70<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge, "over 65536 bytes"},
		{"unknown transfer encoding", "POST /users/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: zip\r\n\r\n", http.StatusNotImplemented, "Unsupported transfer encoding"},
	} {
		code, h, body := rawExchange(t, addr.String(), tt.raw)
		CheckProblemBody(t, h, body)
		var p problemJSON
		if err := json.Unmarshal(body, &p); err != nil || code != tt.code || p.Status != tt.code || !strings.Contains(p.Detail, tt.detail) {
			t.Errorf("%s: %d %s, want %d with a detail holding %q", tt.name, code, body, tt.code, tt.detail)
		}
	}
}

// TestProblemInstanceIsTruncated sends paths far over 256 bytes that reach
// the handler: the problem's instance is the path cut to 256 bytes, never
// inside a %XX escape.
func TestProblemInstanceIsTruncated(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{}, &fakeUsers{}, nil, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/users/" + strings.Repeat("x", 50<<10),
		"/nope/" + strings.Repeat("%C3%A9", 1000),
		"/users/by-id/" + strings.Repeat("é", 300),
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		srv.Handler().ServeHTTP(rec, req)
		var p problemJSON
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%.40s: %v", path, err)
		}
		esc := req.URL.EscapedPath()
		if rec.Code < 400 || len(p.Instance) > maxInstanceBytes || len(p.Instance) < maxInstanceBytes-2 || !strings.HasPrefix(esc, p.Instance) {
			t.Errorf("%.40s: %d, instance of %d bytes %.60q; want at most %d bytes, a prefix of the path", path, rec.Code, len(p.Instance), p.Instance, maxInstanceBytes)
		}
		if _, err := url.PathUnescape(p.Instance); err != nil {
			t.Errorf("%.40s: instance %q is cut inside an escape: %v", path, p.Instance, err)
		}
	}
}
