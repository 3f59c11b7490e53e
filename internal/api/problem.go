package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/streamjoin/streamjoin/internal/store"
)

// problem is an error with an HTTP status.
type problem struct {
	status int
	detail string
	err    error
}

func (p *problem) Error() string { return p.detail }

func (p *problem) Unwrap() error { return p.err }

// problemJSON is the RFC 9457 body.
type problemJSON struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// httpStatus is the one place errors become HTTP statuses. A *problem
// keeps its status and detail. A panic is a 500. Otherwise the store's
// Classify decides: a database that cannot be reached, timed out or lost a
// race (Unavailable, Conflict) is a 503, to be retried; anything else,
// being a bug or an error nobody foresaw, is a 500 whose detail is not
// shown.
func httpStatus(err error) (status int, detail string) {
	var p *problem
	var pe *panicError
	switch {
	case errors.As(err, &p):
		return p.status, p.detail
	case errors.As(err, &pe):
		return http.StatusInternalServerError, "internal error"
	}
	switch store.Classify(err) {
	case store.Unavailable, store.Conflict:
		return http.StatusServiceUnavailable, "the database is unavailable; try again"
	}
	return http.StatusInternalServerError, "internal error"
}

// fail answers err as a problem document with the status httpStatus gives
// it, and a Retry-After on every 503. 5xx answers are logged with err; a
// 500 at error level. When the client has gone away, nothing is written.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	status, detail := httpStatus(err)
	switch {
	case status == http.StatusInternalServerError:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	case status >= 500:
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeProblem(w, r, status, detail)
}

// writeProblem writes a problem document, with a Retry-After on a 503,
// and logs nothing.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	h := w.Header()
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problemJSON{
		Type:     "about:blank",
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Instance: truncateInstance(r.URL.EscapedPath()),
	})
}

// maxInstanceBytes bounds a problem's instance: a 60 KB path is not echoed
// back whole.
const maxInstanceBytes = 256

// truncateInstance cuts an escaped path to maxInstanceBytes, before any
// %XX escape the cut would split, so that what is left is still a valid
// URI reference.
func truncateInstance(p string) string {
	if len(p) <= maxInstanceBytes {
		return p
	}
	p = p[:maxInstanceBytes]
	if i := strings.LastIndexByte(p, '%'); i >= 0 && i > len(p)-3 {
		p = p[:i]
	}
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
