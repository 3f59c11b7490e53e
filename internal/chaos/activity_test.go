package chaos_test

import (
	"context"
	"encoding/json"
	"time"

	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/event"
)

// activityWindowLen is the processes' --window.
const activityWindowLen = 10 * time.Second

// chaosWindow is a window's counts, as the oracle, the state and the
// activity topic each give them.
type chaosWindow struct {
	Created     int64 `json:"user_created"`
	Updated     int64 `json:"user_updated"`
	Deleted     int64 `json:"user_deleted"`
	ActiveUsers int64 `json:"active_users"`
}

// activityOracle counts the valid user events acknowledged by the broker
// per organization and window of activityWindowLen, apart from PostgreSQL. The processes
// run with an allowed lateness no event of the stream exceeds, so every
// event counts.
func activityOracle(users []event.User) map[string]chaosWindow {
	out := map[string]chaosWindow{}
	distinct := map[string]map[string]bool{}
	for _, u := range users {
		if u.OrganizationName == nil {
			continue
		}
		key := changelog.ActivityKey(*u.OrganizationName, u.ReceivedAt.Truncate(activityWindowLen))
		w := out[key]
		switch u.Type {
		case event.UserCreated:
			w.Created++
		case event.UserUpdated:
			w.Updated++
		case event.UserDeleted:
			w.Deleted++
		}
		if distinct[key] == nil {
			distinct[key] = map[string]bool{}
		}
		if !distinct[key][u.ID] {
			distinct[key][u.ID] = true
			w.ActiveUsers++
		}
		out[key] = w
	}
	return out
}

// checkActivity checks the windowed activity once every window the user
// watermark has passed is fired and the outbox relayed: the window state
// equals the oracle (activityOracle), each event counted once; the
// activity topic, read read_committed and kept last per key, holds exactly
// the emitted windows of the state; and a window's first record is not a
// correction. It returns the outbox commit numbers the topic holds.
func (h *harness) checkActivity(s *stream, f *figures) map[int64]bool {
	h.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left bool
		if err := h.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+h.schema+`.org_activity a JOIN `+h.schema+`.watermarks w ON w.topic = 'user_events'
			WHERE NOT a.emitted AND a.window_end <= w.watermark) OR EXISTS (SELECT 1 FROM `+h.schema+`.changelog_commits)`).Scan(&left); err != nil {
			h.t.Fatal(err)
		}
		if !left {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatal("activity windows not fired, or the outbox not relayed, 2 minutes after the end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	want := activityOracle(s.users)
	s.mu.Unlock()

	state := map[string]chaosWindow{}
	emitted := map[string]bool{}
	rows, err := h.conn.Query(ctx, `SELECT organization_name, window_start, created, updated, deleted, active_users, emitted FROM `+h.schema+`.org_activity`)
	if err != nil {
		h.t.Fatal(err)
	}
	for rows.Next() {
		var org string
		var start time.Time
		var w chaosWindow
		var e bool
		if err := rows.Scan(&org, &start, &w.Created, &w.Updated, &w.Deleted, &w.ActiveUsers, &e); err != nil {
			h.t.Fatal(err)
		}
		key := changelog.ActivityKey(org, start)
		state[key], emitted[key] = w, e
	}
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	for k, w := range want {
		if state[k] != w {
			if f.ActivityWindowsDiffering < 5 {
				h.t.Errorf("activity: window %s is %+v in the state, the oracle counts %+v", k, state[k], w)
			}
			f.ActivityWindowsDiffering++
		}
	}
	for k := range state {
		if _, ok := want[k]; !ok {
			f.ActivityWindowsDiffering++
		}
	}

	last := map[string]chaosWindow{}
	commits := map[int64]bool{}
	for _, r := range h.readTopic(changelog.DefaultActivityTopic) {
		f.ActivityRecords++
		key := string(r.Key)
		pos, ok := changelog.PositionOf(r)
		if !ok {
			h.t.Fatalf("activity record %s has no position header", key)
		}
		commits[pos.Commit] = true
		var w chaosWindow
		if err := json.Unmarshal(r.Value, &w); err != nil {
			h.t.Fatalf("activity record %s: %v", key, err)
		}
		correction := false
		for _, hd := range r.Headers {
			correction = correction || (hd.Key == changelog.HeaderCorrection && string(hd.Value) == "true")
		}
		_, seen := last[key]
		if correction != seen {
			f.ActivityRecordsMisplaced++ // a first record marked a correction, or a second one not
		}
		last[key] = w
	}
	for k, e := range emitted {
		if e && last[k] != state[k] {
			if f.ActivityTopicDiffering < 5 {
				h.t.Errorf("activity: window %s is %+v in the topic, %+v in the state", k, last[k], state[k])
			}
			f.ActivityTopicDiffering++
		}
	}
	for k := range last {
		if !emitted[k] {
			f.ActivityTopicDiffering++
		}
	}
	if len(want) == 0 || f.ActivityRecords == 0 {
		h.t.Errorf("activity: %d windows, %d records: the check proves little", len(want), f.ActivityRecords)
	}
	if f.ActivityWindowsDiffering+f.ActivityTopicDiffering+f.ActivityRecordsMisplaced > 0 {
		h.t.Errorf("activity: %d windows differ from the oracle, %d differ between topic and state, %d records out of place", f.ActivityWindowsDiffering, f.ActivityTopicDiffering, f.ActivityRecordsMisplaced)
	}
	return commits
}
