package chaos_test

import (
	"context"
	"time"

	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// checkChangelog checks the changelog topic by its three rules, once the
// relay has produced the whole outbox:
//  1. read read_committed from the start, the last value per key is the
//     user_profiles view (a tombstone: no such user);
//  2. within each partition the outbox positions only go up, so a key's
//     values come in the order its state changed, and none comes twice;
//  3. every commit number from 1 to the clock's is in the topic or in
//     others (the commits the enriched and activity topics hold): commit
//     numbers are gap-free, so none of the commits that emitted was lost.
func (h *harness) checkChangelog(f *figures, others map[int64]bool) {
	h.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left bool
		if err := h.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+h.schema+".changelog_commits)").Scan(&left); err != nil {
			h.t.Fatal(err)
		}
		if !left {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatal("the changelog relay did not produce the whole outbox within 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var clock int64
	if err := h.conn.QueryRow(ctx, "SELECT n FROM "+h.schema+".changelog_clock").Scan(&clock); err != nil {
		h.t.Fatal(err)
	}

	last := map[string]string{}
	commits := map[int64]bool{}
	prev := map[int32]store.OutboxPosition{}
	for _, r := range h.readTopic(changelog.DefaultTopic) {
		f.ChangelogRecords++
		pos, ok := changelog.PositionOf(r)
		if !ok {
			h.t.Fatalf("changelog record %d/%d has no position header", r.Partition, r.Offset)
		}
		if !prev[r.Partition].Less(pos) {
			f.ChangelogOutOfOrder++
		}
		prev[r.Partition] = pos
		commits[pos.Commit] = true
		if r.Value == nil {
			delete(last, string(r.Key))
		} else {
			last[string(r.Key)] = string(r.Value)
		}
	}
	for n := int64(1); n <= clock; n++ {
		if !commits[n] && !others[n] {
			f.ChangelogCommitsMissing++
		}
	}

	view := testenv.ProfilesView(h.t, h.conn, h.schema)
	for id, v := range view {
		if last[id] != v {
			if f.ChangelogKeysDiffering < 5 {
				h.t.Errorf("changelog: user %s is %q, the view shows %q", id, last[id], v)
			}
			f.ChangelogKeysDiffering++
		}
	}
	for id, v := range last {
		if _, ok := view[id]; !ok {
			if f.ChangelogKeysDiffering < 5 {
				h.t.Errorf("changelog: user %s is %q, the view has no such user", id, v)
			}
			f.ChangelogKeysDiffering++
		}
	}
	if f.ChangelogRecords == 0 || len(view) == 0 {
		h.t.Errorf("changelog: %d records, %d users in the view: the check proves nothing", f.ChangelogRecords, len(view))
	}
	if f.ChangelogKeysDiffering+f.ChangelogOutOfOrder+f.ChangelogCommitsMissing > 0 {
		h.t.Errorf("changelog: %d keys differ from the view, %d records out of order, %d of %d commits missing", f.ChangelogKeysDiffering, f.ChangelogOutOfOrder, f.ChangelogCommitsMissing, clock)
	}
}
