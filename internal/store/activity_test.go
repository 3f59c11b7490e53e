package store_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// windowFeeder is a feeder whose emitted returns activity windows.
func windowFeeder(t *testing.T, cfg store.Config) *feeder {
	t.Helper()
	cfg.Activity = true
	f := newFeeder(t, cfg)
	f.windows = true
	return f
}

// windowText is a window record as the tests compare it.
func windowText(r store.OutboxRow) string {
	w := r.Window
	s := fmt.Sprintf("%s@%s c%d u%d d%d users%d", w.OrganizationName, w.Start.Format("15:04"), w.Created, w.Updated, w.Deleted, w.ActiveUsers)
	if w.Final {
		s += " final"
	}
	if w.Correction {
		s += " (correction)"
	}
	return s
}

func windowTexts(rows []store.OutboxRow) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, windowText(r))
	}
	return out
}

// TestActivityWindowsFireCorrectAndClose walks one window through its
// life: counted, emitted when the user watermark passes its end, corrected
// by a late event within the allowed lateness, emitted final when the
// watermark passes its end plus the lateness, and closed to later events.
func TestActivityWindowsFireCorrectAndClose(t *testing.T) {
	t.Parallel()
	f := windowFeeder(t, store.Config{Window: time.Hour, AllowedLateness: 30 * time.Minute})
	day := time.Date(2020, 12, 8, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	offs := map[int32]int64{}
	ev := func(id string, typ event.UserEventType, orgName string, p int32, h, m int) event.User {
		offs[p]++
		return user(id, typ, id, orgName, at(h, m), p, offs[p])
	}
	steps := []struct {
		name  string
		users []event.User
		want  []string
		late  int64
	}{
		{"three events in A's 10:00 window; the watermark (the least partition) reaches 10:10: nothing fires",
			[]event.User{ev("u1", event.UserCreated, "A", 0, 10, 5), ev("u1", event.UserUpdated, "A", 1, 10, 10), ev("u2", event.UserCreated, "A", 0, 10, 20)},
			nil, 0},
		{"both partitions reach 11:05: A's window fires",
			[]event.User{ev("u3", event.UserCreated, "B", 0, 11, 5), ev("u4", event.UserCreated, "B", 1, 11, 5)},
			[]string{"A@10:00 c2 u1 d0 users2"}, 0},
		{"a late delete at 10:50, within the lateness: a correction",
			[]event.User{ev("u2", event.UserDeleted, "A", 0, 10, 50)},
			[]string{"A@10:00 c2 u1 d1 users2 (correction)"}, 0},
		{"the watermark reaches 11:40, past 11:00 + 30m: A's window is final",
			[]event.User{ev("u3", event.UserUpdated, "B", 0, 11, 40), ev("u4", event.UserUpdated, "B", 1, 11, 40)},
			[]string{"A@10:00 c2 u1 d1 users2 final"}, 0},
		{"an event at 10:59 now is too late: counted nowhere; so is one in a window that never had an event",
			[]event.User{ev("u9", event.UserCreated, "A", 1, 10, 59), ev("u9", event.UserCreated, "C", 1, 9, 30)},
			nil, 2},
		{"an event without an organization counts nowhere either, but moves the watermark: B's window fires, final at once",
			[]event.User{ev("u5", event.UserCreated, "", 0, 12, 31), ev("u6", event.UserCreated, "", 1, 12, 31)},
			[]string{"B@11:00 c2 u2 d0 users2 final"}, 2},
	}
	for _, s := range steps {
		f.write(s.users, nil)
		f.tick()
		if _, err := f.st.FireWindows(t.Context(), usersTopic, 100); err != nil {
			t.Fatal(err)
		}
		if got := windowTexts(f.emitted()); !slices.Equal(got, s.want) {
			t.Fatalf("%s:\n got %q\nwant %q", s.name, got, s.want)
		}
		if late, _ := f.st.ActivityCounts(); late != s.late {
			t.Fatalf("%s: %d too-late events counted, want %d", s.name, late, s.late)
		}
	}
}

// activityModel is the windowed activity computed apart from the SQL: the
// watermark as the least, over the user partitions, of their greatest
// event time, and each event counted unless its window's end plus the
// lateness is at or behind the watermark of the last tick before its batch.
type activityModel struct {
	window, lateness time.Duration
	maxAt            map[int32]time.Time
	wm               time.Time // zero: none yet
	windows          map[string]*modelWindow
	tooLate          int64
}

type modelWindow struct {
	org     string
	start   time.Time
	c, u, d int64
	users   map[string]bool
}

func (m *activityModel) batch(users []event.User) {
	for _, e := range users {
		if e.ReceivedAt.After(m.maxAt[e.Pos.Partition]) {
			m.maxAt[e.Pos.Partition] = e.ReceivedAt
		}
		if e.OrganizationName == nil {
			continue
		}
		start := e.ReceivedAt.Truncate(m.window)
		if !m.wm.IsZero() && !start.Add(m.window+m.lateness).After(m.wm) {
			m.tooLate++
			continue
		}
		key := *e.OrganizationName + "/" + start.Format(time.RFC3339)
		w := m.windows[key]
		if w == nil {
			w = &modelWindow{org: *e.OrganizationName, start: start, users: map[string]bool{}}
			m.windows[key] = w
		}
		switch e.Type {
		case event.UserCreated:
			w.c++
		case event.UserUpdated:
			w.u++
		case event.UserDeleted:
			w.d++
		}
		w.users[e.ID] = true
	}
}

// tick moves the model's watermark as AdvanceWatermarks does with every
// partition present and none idle: the least greatest time, forward only.
func (m *activityModel) tick(partitions int) {
	if len(m.maxAt) < partitions {
		return
	}
	var least time.Time
	for _, t := range m.maxAt {
		if least.IsZero() || t.Before(least) {
			least = t
		}
	}
	if least.After(m.wm) {
		m.wm = least
	}
}

// TestActivityWindowsProperty: for random streams (out of order by up to
// two windows, random batches and ticks, restarts), once the watermark
// has passed every window plus the lateness, the activity topic, kept last
// per key, holds every window of the model, final, with its counts; each
// window goes out first as a result, then only corrections, then once
// final, and never after.
func TestActivityWindowsProperty(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 99))
			const window, lateness = 10 * time.Minute, 15 * time.Minute
			f := windowFeeder(t, store.Config{Window: window, AllowedLateness: lateness})
			m := &activityModel{window: window, lateness: lateness, maxAt: map[int32]time.Time{}, windows: map[string]*modelWindow{}}
			orgNames := []string{"A", "B", "C"}
			types := []event.UserEventType{event.UserCreated, event.UserUpdated, event.UserDeleted}
			offs := map[int32]int64{}
			var emitted []store.OutboxRow
			for step := range 80 {
				var bu []event.User
				for range rng.IntN(8) {
					p := int32(rng.IntN(2))
					offs[p]++
					// Time moves a minute per step; events are up to 20
					// minutes out of order: some land in windows already
					// fired, some too late.
					at := t0.Add(time.Duration(step)*time.Minute - time.Duration(rng.IntN(20*60))*time.Second)
					if rng.IntN(10) == 0 { // far too late: its window may never have had an event
						at = at.Add(-2 * time.Hour)
					}
					u := user(fmt.Sprintf("user%d", rng.IntN(6)), types[rng.IntN(3)], "n", orgNames[rng.IntN(3)], at, p, offs[p])
					if rng.IntN(8) == 0 {
						u.OrganizationName = nil
					}
					bu = append(bu, u)
				}
				f.write(bu, nil)
				m.batch(bu)
				if rng.IntN(3) > 0 {
					f.tick()
					m.tick(2)
					if _, err := f.st.FireWindows(t.Context(), usersTopic, 3); err != nil {
						t.Fatal(err)
					}
				}
				if rng.IntN(10) == 0 {
					f.restart()
				}
				if rng.IntN(4) == 0 {
					emitted = append(emitted, f.emitted()...)
				}
			}
			// Move the watermark past everything, with events of no
			// organization, and fire until nothing is left.
			end := t0.Add(200 * time.Minute)
			var last []event.User
			for p := int32(0); p < 2; p++ {
				offs[p]++
				u := user("closer", event.UserCreated, "n", "", end, p, offs[p])
				last = append(last, u)
			}
			f.write(last, nil)
			f.tick()
			for {
				n, err := f.st.FireWindows(t.Context(), usersTopic, 3)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			emitted = append(emitted, f.emitted()...)
			if late, _ := f.st.ActivityCounts(); f.activityLateBefore+late != m.tooLate {
				t.Errorf("%d too-late events counted, the model says %d", f.activityLateBefore+late, m.tooLate)
			}
			checkWindows(t, emitted, m)
			// What GET /organizations/{name}/activity reads is the model too.
			for _, org := range orgNames {
				ws, err := f.st.OrganizationActivity(t.Context(), org, time.Time{}, time.Time{}, time.Time{}, 1000)
				if err != nil {
					t.Fatal(err)
				}
				var got, want []string
				for _, w := range ws {
					got = append(got, fmt.Sprintf("%s c%d u%d d%d users%d final=%v", w.Start.Format(time.RFC3339), w.Created, w.Updated, w.Deleted, w.ActiveUsers, w.Final))
				}
				for _, w := range m.windows {
					if w.org == org {
						want = append(want, fmt.Sprintf("%s c%d u%d d%d users%d final=true", w.start.Format(time.RFC3339), w.c, w.u, w.d, len(w.users)))
					}
				}
				sort.Strings(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s's activity as the API reads it:\n got %q\nwant %q", org, got, want)
				}
			}
		})
	}
}

func checkWindows(t *testing.T, emitted []store.OutboxRow, m *activityModel) {
	t.Helper()
	type state struct {
		last  store.ActivityWindow
		final bool
	}
	got := map[string]*state{}
	for _, r := range emitted {
		w := r.Window
		key := w.OrganizationName + "/" + w.Start.Format(time.RFC3339)
		st := got[key]
		switch {
		case st == nil && w.Correction:
			t.Errorf("%s: first emitted as a correction", key)
		case st != nil && st.final:
			t.Errorf("%s: emitted after its final record: %s", key, windowText(r))
		case st != nil && w.Correction && w.Final:
			t.Errorf("%s: a correction marked final", key)
		case st != nil && !w.Correction && !w.Final:
			t.Errorf("%s: a second first result", key)
		}
		if st == nil {
			st = &state{}
			got[key] = st
		}
		st.last, st.final = *w, w.Final
	}
	keys := make([]string, 0, len(m.windows))
	for k := range m.windows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := m.windows[k]
		st := got[k]
		if st == nil {
			t.Errorf("%s: never emitted (model: c%d u%d d%d users%d)", k, w.c, w.u, w.d, len(w.users))
			continue
		}
		g := st.last
		if !st.final || g.Created != w.c || g.Updated != w.u || g.Deleted != w.d || g.ActiveUsers != int64(len(w.users)) {
			t.Errorf("%s: last emitted c%d u%d d%d users%d final=%v, model c%d u%d d%d users%d final", k,
				g.Created, g.Updated, g.Deleted, g.ActiveUsers, st.final, w.c, w.u, w.d, len(w.users))
		}
	}
	for k := range got {
		if m.windows[k] == nil {
			t.Errorf("%s: emitted, but the model has no such window", k)
		}
	}
}

// TestActivityRetentionFollowsTheWatermark: a final window is deleted,
// with its users, once it ended more than the retention before the user
// watermark, and not before; an open one never is.
func TestActivityRetentionFollowsTheWatermark(t *testing.T) {
	t.Parallel()
	f := windowFeeder(t, store.Config{Window: time.Hour, AllowedLateness: time.Hour, WindowRetention: 3 * time.Hour})
	day := time.Date(2020, 12, 8, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	offs := map[int32]int64{}
	both := func(org string, h int) []event.User {
		var us []event.User
		for p := int32(0); p < 2; p++ {
			offs[p]++
			us = append(us, user(fmt.Sprint("u", p), event.UserCreated, "n", org, at(h), p, offs[p]))
		}
		return us
	}
	windows := func(org string) []string {
		ws, err := f.st.OrganizationActivity(t.Context(), org, time.Time{}, time.Time{}, time.Time{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range ws {
			s := w.Start.Format("15:04")
			if w.Final {
				s += " final"
			}
			out = append(out, s)
		}
		return out
	}
	var users int
	countUsers := func() int {
		if err := testenv.Conn(t).QueryRow(t.Context(), "SELECT count(*) FROM "+f.st.Schema()+".org_activity_users").Scan(&users); err != nil {
			t.Fatal(err)
		}
		return users
	}
	for _, s := range []struct {
		h     int
		want  []string
		users int
	}{
		{1, []string{"01:00"}, 2},                               // A's window at 1:00, open
		{3, []string{"01:00 final", "03:00"}, 4},                // 1:00 ended 2:00 + 1h ≤ 3:00: final; kept
		{5, []string{"01:00 final", "03:00 final", "05:00"}, 6}, // 2:00 + 3h = 5:00: not yet past
		{6, []string{"03:00 final", "05:00", "06:00"}, 6},       // now it is: 1:00 goes, with its users
	} {
		f.write(both("A", s.h), nil)
		f.tick()
		if _, err := f.st.FireWindows(t.Context(), usersTopic, 100); err != nil {
			t.Fatal(err)
		}
		if got := windows("A"); !slices.Equal(got, s.want) {
			t.Fatalf("watermark %02d:00: windows %q, want %q", s.h, got, s.want)
		}
		if got := countUsers(); got != s.users {
			t.Fatalf("watermark %02d:00: %d window users kept, want %d", s.h, got, s.users)
		}
	}
}
