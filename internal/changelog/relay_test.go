package changelog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

var t0 = time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)

func str(s string) *string { return &s }

// TestChangelogIsEveryViewChangeOnceInOrder is rules 1 to 3 of the
// changelog, against an oracle that does not read the outbox: after each
// state commit the test reads the user_profiles view, and each profile that
// changed from one read to the next (or disappeared: a tombstone) is what
// the topic must hold for that key next. Read read_committed from the
// start, the topic must hold exactly those values per key, in that order:
// none missing, none twice, none out of order; so the last value per key is
// the view. The relay runs while the state is written, and is restarted
// half way.
func TestChangelogIsEveryViewChangeOnceInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	conn := testenv.Conn(t)
	stop := start(t, e.relay(t, func(c *Config) { c.PageRows = 7 }))

	r := rand.New(rand.NewPCG(5, 6))
	want := map[string][]string{}
	prev := map[string]string{}
	off := int64(0)
	const batches = 60
	for i := range batches {
		if i == batches/2 {
			stop()
			start(t, e.relay(t, func(c *Config) { c.PageRows = 7 }))
		}
		// One kind per batch: one state commit per batch, so the view read
		// after it shows every commit.
		b := &store.Batch{}
		if r.IntN(4) == 0 {
			for range 1 + r.IntN(3) {
				off++
				at := t0.Add(time.Duration(i*10+r.IntN(15)) * time.Second)
				b.Orgs = append(b.Orgs, event.Org{Name: fmt.Sprint("org", r.IntN(6)), Tier: str(fmt.Sprint("tier", r.IntN(3))), CreatedAt: at, Pos: event.Position{Partition: 1, Offset: off}, LogTime: at})
			}
		} else {
			for range 1 + r.IntN(25) {
				off++
				at := t0.Add(time.Duration(i*10+r.IntN(15)-5) * time.Second) // some late
				u := event.User{ID: fmt.Sprint("u", r.IntN(40)), Type: event.UserEventType(r.IntN(3)), ReceivedAt: at, Pos: event.Position{Partition: 0, Offset: off}, LogTime: at}
				if u.Type != event.UserDeleted {
					u.Username = str(fmt.Sprint("name", r.IntN(4)))
					u.OrganizationName = str(fmt.Sprint("org", r.IntN(7))) // org6 never arrives
					u.UserType = str("Admin")
				}
				b.Users = append(b.Users, u)
			}
		}
		if err := e.st.WriteState(ctx, b); err != nil {
			t.Fatal(err)
		}
		now := testenv.ProfilesView(t, conn, e.st.Schema())
		for id, v := range now {
			if prev[id] != v {
				want[id] = append(want[id], id+"="+v)
			}
		}
		for id := range prev {
			if _, ok := now[id]; !ok {
				want[id] = append(want[id], id+"=†")
			}
		}
		prev = now
	}
	e.waitEmpty(t)
	got := map[string][]string{}
	lastPos := map[int32]store.OutboxPosition{}
	total := 0
	for _, rec := range e.readTopic(t) {
		got[string(rec.Key)] = append(got[string(rec.Key)], value(rec))
		total++
		pos, ok := PositionOf(rec)
		if !ok {
			t.Fatalf("record at %d/%d has no position header", rec.Partition, rec.Offset)
		}
		if !lastPos[rec.Partition].Less(pos) {
			t.Errorf("partition %d: position %v after %v", rec.Partition, pos, lastPos[rec.Partition])
		}
		lastPos[rec.Partition] = pos
	}
	if total < 100 {
		t.Fatalf("only %d changelog records: the test proves little", total)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changelog per key (-every view change +topic):\n%s", diff)
	}
}

// TestChangelogNeverSkipsALateCommit is the outbox's classic pitfall: T1
// writes outbox rows first (lower sequence numbers) and commits last, while
// T2 writes after it and commits first. A relay that goes by sequence
// number would relay T2 and then skip T1 for good. Commit numbers are taken
// under a lock held until commit, so T2 waits for T1, and both arrive.
func TestChangelogNeverSkipsALateCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	start(t, e.relay(t, nil))

	// T1: an outbox row and a commit number, not committed.
	c1 := testenv.Conn(t)
	if _, err := c1.Exec(ctx, "SET search_path = "+e.st.Schema()); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Exec(ctx, store.StageTablesSQL); err != nil {
		t.Fatal(err)
	}
	t1, err := c1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := t1.Exec(ctx, `INSERT INTO changelog_outbox (rows, payload) VALUES (1, ARRAY[ROW('t1', false, 'early', NULL, NULL, NULL, NULL, $1::timestamptz)::changelog_profile])`, t0); err != nil {
		t.Fatal(err)
	}
	if err := store.UpsertStateChangelogTx(ctx, t1, &store.Batch{}); err != nil { // takes the commit number
		t.Fatal(err)
	}
	// T2: a whole state write, after T1's row.
	done := make(chan error, 1)
	go func() {
		done <- e.st.WriteState(ctx, &store.Batch{Users: []event.User{{ID: "t2", Type: event.UserCreated, Username: str("late"), ReceivedAt: t0, LogTime: t0}}})
	}()
	if err, finished := testenv.WaitBlockedOrDone(t, c1.PgConn().PID(), done); finished {
		// Only without the guard: let the relay pass T2 before T1 commits.
		if err != nil {
			t.Fatal(err)
		}
		e.waitEmpty(t)
		done <- nil
	}
	if err := t1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.waitEmpty(t)
	var keys []string
	for _, rec := range e.readTopic(t) {
		keys = append(keys, string(rec.Key))
	}
	if diff := cmp.Diff([]string{"t1", "t2"}, keys); diff != "" {
		t.Errorf("changelog keys in relay order (-want +got):\n%s", diff)
	}
}
