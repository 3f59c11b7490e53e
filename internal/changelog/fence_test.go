package changelog

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
)

// TestChangelogFencesAStalledLeader stalls a leading relay between its last
// produce and its commit, long enough for PostgreSQL to end its idle
// session and for a standby to lead. The standby's first act initialises
// the shared transactional id, which aborts the stalled leader's
// transaction and fences it: when the stalled leader wakes and commits, the
// broker refuses, and every profile is in the topic once. With a
// transactional id per relay instead (no fence), the stalled commit lands
// and the topic holds the page twice.
func TestChangelogFencesAStalledLeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()

	stalled, release := make(chan struct{}), make(chan struct{})
	committed := make(chan error, 1)
	var before, after sync.Once
	a := e.relay(t, nil)
	a.beforeCommit = func() {
		before.Do(func() {
			close(stalled)
			<-release
		})
	}
	a.afterCommit = func(err error) { after.Do(func() { committed <- err }) }
	start(t, a)

	const users = 20
	b := &store.Batch{}
	for i := range users {
		b.Users = append(b.Users, event.User{ID: fmt.Sprint("u", i), Type: event.UserCreated, Username: str("n"), ReceivedAt: t0, LogTime: t0, Pos: event.Position{Offset: int64(i)}})
	}
	if err := e.st.WriteState(ctx, b); err != nil {
		t.Fatal(err)
	}
	<-stalled // a has produced the page and not committed it

	// b stands by until PostgreSQL ends a's idle session (IdleTimeout),
	// then leads, fences a, and relays everything itself.
	start(t, e.relay(t, nil))
	e.waitEmpty(t)
	close(release) // a commits now, or tries to
	if err := <-committed; err == nil {
		t.Error("the stalled leader's commit succeeded after a new leader took over")
	} else {
		t.Logf("the stalled leader's commit failed as it should: %v", err)
	}
	recs := e.readTopic(t)
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.Key)]++
	}
	for i := range users {
		if n := seen[fmt.Sprint("u", i)]; n != 1 {
			t.Errorf("user u%d is in the changelog %d times, want once", i, n)
		}
	}
	if len(recs) != users {
		t.Errorf("%d changelog records, want %d", len(recs), users)
	}
}
