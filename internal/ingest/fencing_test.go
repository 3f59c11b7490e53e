package ingest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/store"
)

// replaceWhilePaused runs a consumer writing through w, waits until w has
// paused it (paused closed; it never did what), and then claims partition 0
// of both topics as a successor would on its assignment.
// It returns the paused member's stop function. shutdown is how long that
// member's batch in flight may take to finish after stop.
func (e *env) replaceWhilePaused(t *testing.T, w ingest.Writer, paused <-chan struct{}, what string, shutdown time.Duration) (stop func()) {
	t.Helper()
	cfg := e.config(5000)
	cfg.ShutdownTimeout = shutdown
	stop = e.startWith(t, cfg, w)
	select {
	case <-paused:
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer never " + what)
	}
	tps := []store.TopicPartition{{Topic: "user_events", Partition: 0}, {Topic: "org_events", Partition: 0}}
	if _, err := e.st.ClaimOffsets(context.Background(), tps); err != nil {
		t.Fatal(err)
	}
	return stop
}

// pausingWriter holds the first batch until released, like a member paused
// (SIGSTOP, a long GC) between polling and committing, and records what the
// store answered when it resumed.
type pausingWriter struct {
	ingest.Writer
	paused  chan struct{}
	release chan struct{}
	once    sync.Once
	first   chan error
}

func (w *pausingWriter) WriteLog(ctx context.Context, b *store.Batch) error {
	first := false
	w.once.Do(func() { first = true })
	if !first {
		// Nothing else commits until the test has looked: the member,
		// still assigned the partition by Kafka, claims it again and
		// would write the same records legitimately.
		<-ctx.Done()
		return ctx.Err()
	}
	close(w.paused)
	<-w.release
	err := w.Writer.WriteLog(ctx, b)
	w.first <- err
	return err
}

// TestZombieBatchIsFenced: while a member is paused with a batch in hand,
// another member claims its partitions. When the paused member resumes, its
// batch is refused: nothing of its raw log or offsets lands. (Its state
// committed before the pause, on purpose: state is idempotent, and the
// successor applies the same events; see store.WriteState.)
func TestZombieBatchIsFenced(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(1, "user_events", "org_events"))
	users, _ := workload(4, 50, 300, 5, 0)
	produce(t, e.broker, "user_events", users)
	w := &pausingWriter{Writer: e.st, paused: make(chan struct{}), release: make(chan struct{}), first: make(chan error, 1)}
	e.replaceWhilePaused(t, w, w.paused, "wrote a batch", 100*time.Millisecond)
	close(w.release)
	if err := <-w.first; store.Classify(err) != store.Fenced {
		t.Fatalf("the paused member's batch: err = %v, want fenced", err)
	}
	var n int
	if err := e.conn(t).QueryRow(context.Background(), "SELECT (SELECT count(*) FROM "+e.schema+".user_events) + (SELECT count(*) FROM "+e.schema+".kafka_offsets WHERE next_offset IS NOT NULL)").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the fenced batch left %d rows behind", n)
	}
}

// ownerCheckPauser holds the first ownership check, which comes right
// before a batch's dead letters are produced, like a member paused there;
// checked gets what the check answered after the release.
type ownerCheckPauser struct {
	ingest.Writer
	once    sync.Once
	paused  chan struct{}
	release chan struct{}
	checked chan []store.TopicPartition
}

func (w *ownerCheckPauser) LostPartitions(ctx context.Context, owned []store.OffsetAdvance) ([]store.TopicPartition, error) {
	first := false
	w.once.Do(func() { first = true })
	if !first {
		return w.Writer.LostPartitions(ctx, owned)
	}
	close(w.paused)
	<-w.release
	lost, err := w.Writer.LostPartitions(ctx, owned)
	w.checked <- lost
	return lost, err
}

// TestReplacedMemberProducesNoDeadLetters: a member about to produce a
// batch's dead letters is replaced (its partitions claimed by a successor).
// It must not produce them: the successor has read the DLQ's tail, or will,
// and produces them itself.
func TestReplacedMemberProducesNoDeadLetters(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(1, "user_events", "org_events"))
	users, _ := workload(4, 50, 300, 5, 0)
	invalid := 0
	for _, u := range users {
		if u.invalid {
			invalid++
		}
	}
	if invalid == 0 {
		t.Fatal("the workload has no invalid record: this test would prove nothing")
	}
	produce(t, e.broker, "user_events", users)
	w := &ownerCheckPauser{Writer: e.st, paused: make(chan struct{}), release: make(chan struct{}), checked: make(chan []store.TopicPartition, 1)}
	// A long shutdown timeout: stopping the member then waits for the batch
	// in hand to finish, dead letters included, and cancels nothing.
	stop := e.replaceWhilePaused(t, w, w.paused, "checked that it still owns its partitions before producing dead letters", time.Minute)
	close(w.release)
	select {
	case lost := <-w.checked:
		if len(lost) == 0 {
			t.Fatal("the ownership check found nothing lost after the successor's claim")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the ownership check did not return")
	}
	// Stopping the member waits for its batch in hand to finish: whatever it
	// was going to produce is acknowledged once Run has returned. (It would
	// claim the partition again only after a session timeout, 45 s.)
	stop()
	if produced := e.endOffsets(t, "user_events.dlq"); produced != 0 {
		t.Errorf("the replaced member produced %d dead letters after its successor's claim; want 0 (the batch has %d)", produced, invalid)
	}
}

// TestLateClaimByAReplacedMemberIsTakenBack: a member paused in the middle
// of claiming can finish its claim after the group moved on, fencing the
// partition's rightful owner. The owner, still assigned the partition by
// Kafka, claims it again after a session timeout instead of stalling.
func TestLateClaimByAReplacedMemberIsTakenBack(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(2, "user_events", "org_events"),
		kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "500"}))
	users, orgs := workload(5, 100, 2000, 10, 100)
	half := len(users) / 2
	produce(t, e.broker, "user_events", users[:half])
	produce(t, e.broker, "org_events", orgs)
	cfg := e.config(200)
	cfg.SessionTimeout = time.Second
	e.start(t, cfg)
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users[:half], "org_events": orgs})

	// The late claim of a replaced member.
	var tps []store.TopicPartition
	for p := int32(0); p < 2; p++ {
		tps = append(tps, store.TopicPartition{Topic: "user_events", Partition: p}, store.TopicPartition{Topic: "org_events", Partition: p})
	}
	if _, err := e.st.ClaimOffsets(context.Background(), tps); err != nil {
		t.Fatal(err)
	}
	produce(t, e.broker, "user_events", users[half:])
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	e.checkState(t, users, orgs)
	e.checkDLQ(t, "user_events", users, true)
}
