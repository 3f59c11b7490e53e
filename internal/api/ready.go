package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// The reasons /ready gives, as its 503's detail, checked in this order.
const (
	reasonStopping    = "shutting down"
	reasonUnreachable = "postgres unreachable"
	reasonMigrating   = "migrating: the schema is not migrated yet"
	reasonNotJoined   = "not in the consumer group yet"
)

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r, s) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "UP"})
}

// ready answers 200 when the process is ready, else 503 with the reason.
// A probe that fails is not a failed request: it is not logged as one.
// Instead, each change of the answer is logged once (see readyLog).
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r, s) {
		return
	}
	reason, err := s.readiness(r.Context())
	if err != nil && r.Context().Err() != nil {
		return // the prober went away
	}
	s.readyLog.change(s, reason, err)
	if reason != "" {
		writeProblem(w, r, http.StatusServiceUnavailable, reason)
		return
	}
	body := readyBody{Status: "READY"}
	if wr, ok := s.users.(watermarkReader); ok {
		// Best effort: a role that may not read the offsets (the api role)
		// shows none, and is no less ready for it.
		if ws, err := wr.Watermarks(r.Context()); err == nil {
			for _, wm := range ws {
				body.Watermarks = append(body.Watermarks, readyWatermark{Topic: wm.Topic, Watermark: wm.Watermark, MaxEventTime: timeOrNil(wm.MaxEventTime), Idle: wm.Idle})
			}
		} else {
			s.log.Debug("/ready: watermarks not shown", "err", err)
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// watermarkReader is what /ready shows the event-time progress from;
// *store.Store implements it.
type watermarkReader interface {
	Watermarks(ctx context.Context) ([]store.Watermark, error)
}

// readyBody is /ready's 200 answer.
type readyBody struct {
	Status     string           `json:"status"`
	Watermarks []readyWatermark `json:"watermarks,omitempty"`
}

// readyWatermark is one topic's event-time progress in /ready's body.
type readyWatermark struct {
	Topic        string     `json:"topic"`
	Watermark    time.Time  `json:"watermark"`
	MaxEventTime *time.Time `json:"max_event_time"`
	Idle         bool       `json:"idle"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// readiness returns why the process is not ready ("" if it is) and, for
// an unreachable PostgreSQL, the error. PostgreSQL is asked before the
// schema, so a database down at start reads as such, not as "migrating".
func (s *Server) readiness(ctx context.Context) (string, error) {
	if s.isStopping() {
		return reasonStopping, nil
	}
	if err := s.users.Ping(ctx); err != nil {
		return reasonUnreachable, err
	}
	if s.starting() {
		return reasonMigrating, nil
	}
	if !s.joined() {
		return reasonNotJoined, nil
	}
	return "", nil
}

// readyLog remembers the last answer of /ready, so that a probe polling it
// every second logs only changes: once when the process becomes not ready,
// with the reason, and once when it becomes ready. An unreachable
// PostgreSQL is a warning; the other reasons are the normal course of a
// start or a stop and are logged at info. Safe for concurrent use.
type readyLog struct {
	mu   sync.Mutex
	last *string // nil until the first probe
}

func (l *readyLog) change(s *Server, reason string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last != nil && *l.last == reason {
		return
	}
	l.last = &reason
	switch {
	case reason == "":
		s.log.Info("ready")
	case err != nil:
		s.log.Warn("not ready", "reason", reason, "err", err)
	default:
		s.log.Info("not ready", "reason", reason)
	}
}
