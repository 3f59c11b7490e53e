package api

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// ActivityReader is what GET /organizations/{name}/activity reads.
// *store.Store implements it; New takes it from the Users it is given, and
// without it the route answers 501.
type ActivityReader interface {
	OrganizationActivity(ctx context.Context, org string, from, to, after time.Time, limit int) ([]store.Window, error)
}

// cursorActivity's payload is the last window's start, in Unix
// microseconds.
const cursorActivity byte = 'a'

// activityJSON is GET /organizations/{name}/activity's answer.
type activityJSON struct {
	OrganizationName string           `json:"organization_name"`
	Windows          []activityWindow `json:"windows"`
	NextCursor       string           `json:"next_cursor,omitempty"`
}

// activityWindow is one window of the answer: the state's counts, and
// whether it is final (the user watermark has passed its end plus the
// allowed lateness: it changes no more) or open.
type activityWindow struct {
	store.Window
	Status string `json:"status"`
}

// getActivity serves GET /organizations/{name}/activity?from=&to=: the
// organization's windows that start in [from, to) (RFC 3339; either may
// be left out), a page at a time, in start order.
func (s *Server) getActivity(w http.ResponseWriter, r *http.Request) {
	if !s.browsing(w, r) {
		return
	}
	if s.activity == nil {
		s.fail(w, r, &problem{status: http.StatusNotImplemented, detail: "this server cannot read organization activity"})
		return
	}
	name := r.PathValue("name")
	if err := s.checkParam("name", name); err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	from, err := timeParam(q.Get("from"), "from")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to, err := timeParam(q.Get("to"), "to")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: "from must be before to"})
		return
	}
	limit, err := pageLimit(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, err := decodeActivityCursor(q.Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ws, err := s.activity.OrganizationActivity(r.Context(), name, from, to, after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := activityJSON{OrganizationName: name, Windows: make([]activityWindow, 0, min(len(ws), limit))}
	for i, win := range ws {
		if i == limit {
			out.NextCursor = encodeActivityCursor(ws[limit-1].Start)
			break
		}
		status := "open"
		if win.Final {
			status = "final"
		}
		out.Windows = append(out.Windows, activityWindow{Window: win, Status: status})
	}
	s.writeCached(w, r, out)
}

// timeParam parses an RFC 3339 query parameter; "" is the zero time.
func timeParam(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &problem{status: http.StatusBadRequest, detail: fmt.Sprintf("%s %q: want an RFC 3339 time, e.g. 2020-12-08T20:00:00Z", name, shorten(v))}
	}
	return t, nil
}

// shorten cuts v to its first 64 runes, for an error message.
func shorten(v string) string {
	for i := range v {
		if i >= 64 {
			return v[:i] + "…"
		}
	}
	return v
}

func encodeActivityCursor(start time.Time) string {
	return encodeCursor(cursorActivity, binary.BigEndian.AppendUint64(nil, uint64(start.UnixMicro())))
}

// decodeActivityCursor returns the zero time for "" (the first page).
func decodeActivityCursor(s string) (time.Time, error) {
	p, err := decodeCursor(cursorActivity, s)
	if err != nil || p == nil {
		return time.Time{}, err
	}
	if len(p) != 8 {
		return time.Time{}, errBadCursor
	}
	return time.UnixMicro(int64(binary.BigEndian.Uint64(p))).UTC(), nil
}
