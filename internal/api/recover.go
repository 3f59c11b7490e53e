package api

import (
	"fmt"
	"net/http"
	"runtime/debug"
)

// panicError is a recovered panic: a bug. httpStatus answers it with 500,
// whatever its value is (even an error Classify would call Unavailable),
// and fail logs it with its stack.
type panicError struct {
	what  string // where it happened: "handler", "user lookup"
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("%s panicked: %v\n%s", e.what, e.value, e.stack)
}

// recoverPanics turns a panic in next into a logged 500 problem document,
// so that a bug answers as one instead of net/http dropping the connection.
// If next had already started its response, the response can no longer be
// replaced: the panic is logged and the connection aborted, so that the
// client does not take a truncated body for a whole one.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &startedWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler { //nolint:errorlint // net/http's sentinel, compared as net/http does
				panic(p)
			}
			err := &panicError{what: "handler", value: p, stack: debug.Stack()}
			if rw.started {
				s.log.Error("request failed after its response started; aborting it", "method", r.Method, "path", r.URL.Path, "err", err)
				panic(http.ErrAbortHandler)
			}
			s.fail(w, r, err)
		}()
		next.ServeHTTP(rw, r)
	})
}

// startedWriter records whether the response has started.
type startedWriter struct {
	http.ResponseWriter
	started bool
}

func (w *startedWriter) WriteHeader(code int) {
	w.started = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *startedWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *startedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
