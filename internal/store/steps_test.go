package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// stepSeen is what a step saw inside the batch transaction.
type stepSeen struct {
	name       string
	nextOffset string // kafka_offsets u/0's next_offset as the step saw it
	userRows   int    // users rows visible to the step
	rawRows    int    // user_events rows visible to the step
}

// recordingStep inserts a row naming itself into step_log and records what
// it saw, then returns fail.
func recordingStep(name string, seen *[]stepSeen, fail error) store.Step {
	return func(ctx context.Context, tx pgx.Tx, b *store.Batch) error {
		s := stepSeen{name: name}
		err := tx.QueryRow(ctx, `SELECT (SELECT coalesce(next_offset::text, 'NULL') FROM kafka_offsets WHERE topic = 'u' AND partition = 0),
			(SELECT count(*) FROM users), (SELECT count(*) FROM user_events)`).Scan(&s.nextOffset, &s.userRows, &s.rawRows)
		if err != nil {
			return fmt.Errorf("step %s reading: %w", name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO step_log (step, users) VALUES ($1, $2)", name, len(b.Users)); err != nil {
			return fmt.Errorf("step %s writing: %w", name, err)
		}
		*seen = append(*seen, s)
		return fail
	}
}

// stepStore returns a store with a step_log table in its schema, and a
// function that lists step_log's steps in insertion order.
func stepStore(t *testing.T) (*store.Store, func() []string) {
	t.Helper()
	st := setup(t)
	conn := testenv.Conn(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE TABLE "+st.Schema()+".step_log (n serial PRIMARY KEY, step text NOT NULL, users int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return st, func() []string {
		t.Helper()
		rows, err := conn.Query(ctx, "SELECT step FROM "+st.Schema()+".step_log ORDER BY n")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
}

func count(t *testing.T, st *store.Store, table string) int {
	t.Helper()
	var n int
	if err := testenv.Conn(t).QueryRow(context.Background(), "SELECT count(*) FROM "+st.Schema()+"."+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStepsCommitWithTheBatchAndRunBeforeTheAdvance: steps run in order,
// after the raw logs and upserts (they see them) and before the offset
// advance (they see the old offset), and their writes commit with the batch.
func TestStepsCommitWithTheBatchAndRunBeforeTheAdvance(t *testing.T) {
	t.Parallel()
	st, logged := stepStore(t)
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0})
	var seen []stepSeen
	withSteps := st.WithSteps(recordingStep("outbox", &seen, nil)).WithSteps(recordingStep("window", &seen, nil))
	b := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserCreated, "alice", "A", t0, 0, 0), user("b", event.UserCreated, "bob", "A", t0, 0, 1)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 2)}}
	if err := withSteps.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	want := []stepSeen{{name: "outbox", nextOffset: "NULL", userRows: 2, rawRows: 2}, {name: "window", nextOffset: "NULL", userRows: 2, rawRows: 2}}
	if !slices.Equal(seen, want) {
		t.Errorf("steps saw %+v, want %+v: in order, after the upserts, before the advance", seen, want)
	}
	if got := logged(); !slices.Equal(got, []string{"outbox", "window"}) {
		t.Errorf("step_log after commit = %q, want outbox, window", got)
	}
	if c := claim(t, st, store.TopicPartition{Topic: "u", Partition: 0}); c[store.TopicPartition{Topic: "u", Partition: 0}].Next == nil {
		t.Error("the offset did not advance")
	}

	// The Store it was derived from runs no steps.
	seen = nil
	if err := st.WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o"}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 0 || len(logged()) != 2 {
		t.Errorf("WithSteps changed the original store: its batch ran %d steps", len(seen))
	}
}

// TestFencedBatchRollsBackItsSteps: the step runs, then the advance finds
// the partition claimed by another writer; the step's write goes with the
// rest of the batch.
func TestFencedBatchRollsBackItsSteps(t *testing.T) {
	t.Parallel()
	st, logged := stepStore(t)
	ctx := context.Background()
	tp := store.TopicPartition{Topic: "u", Partition: 0}
	claim(t, st, tp)
	claim(t, st, tp) // a successor: generation 2
	var seen []stepSeen
	err := st.WithSteps(recordingStep("outbox", &seen, nil)).WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("z", event.UserCreated, "zombie", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)}}) // generation 1
	if store.Classify(err) != store.Fenced {
		t.Fatalf("batch under a stale generation: %v, want fenced", err)
	}
	if len(seen) != 1 {
		t.Fatalf("the step ran %d times, want once (before the advance)", len(seen))
	}
	if got := logged(); len(got) != 0 {
		t.Errorf("step_log after a fenced batch = %q, want nothing", got)
	}
	if n := count(t, st, "users"); n != 0 {
		t.Errorf("users after a fenced batch: %d rows", n)
	}
}

// TestFailingStepRollsBackEverything: a step's error comes back from
// WriteBatch, and nothing of the batch (raw logs, state, offsets, the
// steps' own writes) commits.
func TestFailingStepRollsBackEverything(t *testing.T) {
	t.Parallel()
	st, logged := stepStore(t)
	ctx := context.Background()
	tp := store.TopicPartition{Topic: "u", Partition: 0}
	claim(t, st, tp)
	boom := errors.New("boom")
	var seen []stepSeen
	err := st.WithSteps(recordingStep("first", &seen, nil), recordingStep("failing", &seen, boom), recordingStep("never", &seen, nil)).
		WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o",
			Users:   []event.User{user("a", event.UserCreated, "alice", "A", t0, 0, 0)},
			Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)}})
	if !errors.Is(err, boom) || store.Classify(err) != store.Permanent {
		t.Fatalf("WriteBatch with a failing step = %v (class %v), want boom, permanent", err, store.Classify(err))
	}
	if len(seen) != 2 {
		t.Errorf("%d steps ran, want 2: none after the failing one", len(seen))
	}
	if got := logged(); len(got) != 0 {
		t.Errorf("step_log = %q, want nothing", got)
	}
	for _, table := range []string{"users", "user_events"} {
		if n := count(t, st, table); n != 0 {
			t.Errorf("%s has %d rows after a failed step, want 0", table, n)
		}
	}
	if c := claim(t, st, tp); c[tp].Next != nil {
		t.Errorf("offset advanced to %d despite the failed step", *c[tp].Next)
	}
}
