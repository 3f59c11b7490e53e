package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestWriteBatchFencing(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0})
	ok := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserCreated, "alice", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)},
	}
	if err := st.WriteBatch(ctx, ok); err != nil {
		t.Fatal(err)
	}
	// A zombie that still believes nothing was committed must be refused,
	// and nothing of its batch may land.
	zombie := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("z", event.UserCreated, "zombie", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)},
	}
	err := st.WriteBatch(ctx, zombie)
	var fe *store.FencedError
	if !errors.As(err, &fe) || store.Classify(err) != store.Fenced {
		t.Fatalf("zombie batch: err = %v, want a FencedError", err)
	}
	if len(fe.Partitions) != 1 || fe.Partitions[0] != (store.TopicPartition{Topic: "u", Partition: 0}) {
		t.Errorf("fenced partitions = %v", fe.Partitions)
	}
	if got := names(t, st, "zombie"); len(got) != 0 {
		t.Errorf("fenced batch wrote state: %+v", got)
	}
	var n int
	if err := testenv.Conn(t).QueryRow(ctx, "SELECT count(*) FROM "+st.Schema()+".user_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("user_events has %d rows, want 1", n)
	}
}

// TestClaimIsNotBlockedByABatchInProgress: a batch transaction holds the
// offset rows only in its last statement. A member frozen in the middle of
// one (here: its upsert waits on a row lock the test holds; in life, it is
// stopped while streaming a COPY, which no PostgreSQL timeout ends) must not
// stall its successor's claim, and its batch is then fenced.
func TestClaimIsNotBlockedByABatchInProgress(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	tp := store.TopicPartition{Topic: "u", Partition: 0}
	claim(t, st, tp)
	first := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserCreated, "alice", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)}}
	if err := st.WriteBatch(ctx, first); err != nil {
		t.Fatal(err)
	}
	holder := testenv.Conn(t)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1 FROM "+st.Schema()+".users WHERE id = 'a' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	held := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserUpdated, "alice", "B", t0.Add(time.Second), 0, 1)},
		Offsets: []store.OffsetAdvance{adv("u", 0, i64(1), 2)}}
	done := make(chan error, 1)
	go func() { done <- st.WriteBatch(ctx, held) }()
	// Wait until the batch's transaction is blocked in its upsert.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting bool
		if err := testenv.Conn(t).QueryRow(ctx, "SELECT count(*) > 0 FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))", holder.PgConn().PID()).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited on the held row")
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := st.ClaimOffsets(cctx, []store.TopicPartition{tp}); err != nil {
		t.Fatalf("a successor's claim while a batch is mid-transaction: %v; want it through at once", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; store.Classify(err) != store.Fenced {
		t.Errorf("the held batch after the claim: err = %v, want fenced", err)
	}
}

// TestClaimFencesEarlierOwner: once a partition is claimed again, a batch
// under the old generation is refused even though its offsets line up, and
// LostPartitions reports the partition before anything is written.
func TestClaimFencesEarlierOwner(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	p0, p1 := store.TopicPartition{Topic: "u", Partition: 0}, store.TopicPartition{Topic: "u", Partition: 1}
	first := claim(t, st, p0, p1)
	if first[p0].Generation != 1 || first[p0].Next != nil {
		t.Fatalf("first claim = %+v, want generation 1 and no offset", first[p0])
	}
	second := claim(t, st, p0) // a new owner of partition 0
	if second[p0].Generation != 2 {
		t.Fatalf("second claim generation = %d, want 2", second[p0].Generation)
	}
	old := []store.OffsetAdvance{adv("u", 0, nil, 1), adv("u", 1, nil, 1)}
	lost, err := st.LostPartitions(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 1 || lost[0] != p0 {
		t.Errorf("LostPartitions = %v, want [u/0]", lost)
	}
	err = st.WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("z", event.UserCreated, "zombie", "A", t0, 0, 0)},
		Offsets: old[:1]})
	if store.Classify(err) != store.Fenced {
		t.Fatalf("batch under a stale generation: err = %v, want fenced", err)
	}
	if got := names(t, st, "zombie"); len(got) != 0 {
		t.Errorf("fenced batch wrote state: %+v", got)
	}
	cur := adv("u", 0, nil, 1)
	cur.Generation = second[p0].Generation
	if err := st.WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserCreated, "alice", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{cur}}); err != nil {
		t.Fatalf("batch under the current generation: %v", err)
	}
	if again := claim(t, st, p0); again[p0].Next == nil || *again[p0].Next != 1 {
		t.Errorf("claim after commit = %+v, want next offset 1", again[p0])
	}
}

// TestConcurrentWritersDoNotDeadlock runs two writers, each owning its own
// partition, whose batches touch the same users in opposite orders. Sorted
// upserts mean neither ever sees a deadlock (40P01), and the result is the
// newest event per user.
func TestConcurrentWritersDoNotDeadlock(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0}, store.TopicPartition{Topic: "u", Partition: 1})
	const batches, perBatch = 30, 200
	errc := make(chan error, 2)
	for part := int32(0); part < 2; part++ {
		go func() {
			var next *int64
			for b := 0; b < batches; b++ {
				us := make([]event.User, perBatch)
				for i := range us {
					id := i
					if part == 1 {
						id = perBatch - 1 - i // the opposite order
					}
					off := int64(b*perBatch + i)
					us[i] = user(fmt.Sprintf("u%03d", id), event.UserUpdated, fmt.Sprintf("p%d-b%d", part, b), "A", t0.Add(time.Duration(b)*time.Second), part, off)
				}
				to := int64((b + 1) * perBatch)
				err := st.WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o", Users: us,
					Offsets: []store.OffsetAdvance{{Topic: "u", Partition: part, Generation: 1, From: next, To: to}}})
				if err != nil {
					errc <- fmt.Errorf("writer %d batch %d: %w (class %v)", part, b, err, store.Classify(err))
					return
				}
				next = &to
			}
			errc <- nil
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// Both writers' last batch has the same time; partition 1 wins the tie.
	if got := names(t, st, fmt.Sprintf("p1-b%d", batches-1)); len(got) != perBatch {
		t.Errorf("%d users hold the newest event, want %d", len(got), perBatch)
	}
}
