package ingest_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// checkThenPause lets the ownership check that comes before a batch's dead
// letters are produced answer, and then, on call number at, holds the
// member right there, between the check and the produce, as SIGSTOP or a
// long GC pause would. after gets what the next check answers.
type checkThenPause struct {
	ingest.Writer
	at      int64
	calls   atomic.Int64
	paused  chan struct{}
	release chan struct{}
	after   chan []store.TopicPartition
}

func (w *checkThenPause) LostPartitions(ctx context.Context, owned []store.OffsetAdvance) ([]store.TopicPartition, error) {
	n := w.calls.Add(1)
	lost, err := w.Writer.LostPartitions(ctx, owned)
	switch {
	case n == w.at && err == nil && len(lost) == 0:
		close(w.paused)
		<-w.release
	case n == w.at+1:
		w.after <- lost
	}
	return lost, err
}

// runMember runs a consumer writing through w with its own metrics, until
// the test ends or stop is called.
func (e *env) runMember(t *testing.T, cfg ingest.Config, w ingest.Writer, reg *prometheus.Registry) (stop func()) {
	t.Helper()
	c, err := ingest.New(cfg, e.connector(t), w, ingest.NewMetrics(reg), testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consumer Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("consumer did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestZombieDeadLettersAreFenced: member A checks in PostgreSQL that it
// owns its partition and is paused right after, before producing the
// batch's dead letters. Member B joins, takes the partition over, claims
// it, fences its dead-letter producer, reads the DLQ tail and produces
// every dead letter. When A resumes, its produce is refused by the broker
// as fenced, and its next ownership check drops the partition: the DLQ,
// read read_committed, holds each dead letter once.
func TestZombieDeadLettersAreFenced(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(1, "user_events", "org_events"))
	users, _ := workload(7, 50, 400, 5, 0)
	invalid := 0
	for _, u := range users {
		if u.invalid {
			invalid++
		}
	}
	if invalid < 4 {
		t.Fatalf("the workload has %d invalid records; the test needs several batches with dead letters", invalid)
	}
	produce(t, e.broker, "user_events", users)

	cfg := e.config(40) // several batches with dead letters
	cfg.RebalanceTimeout = time.Second
	cfg.ShutdownTimeout = time.Minute // stopping A waits for its batch in hand
	// The second batch with dead letters: the first has fenced A's producer
	// in, so the pause falls between a check and a produce that would land.
	a := &checkThenPause{Writer: e.st, at: 2, paused: make(chan struct{}), release: make(chan struct{}), after: make(chan []store.TopicPartition, 1)}
	regA := prometheus.NewRegistry()
	stopA := e.runMember(t, cfg, a, regA)
	select {
	case <-a.paused:
	case <-time.After(30 * time.Second):
		t.Fatal("member A never reached its second dead-letter batch")
	}

	// B takes over once the group gives up on A (the rebalance timeout)
	// and commits everything, dead letters first.
	e.runMember(t, cfg, e.st, prometheus.NewRegistry())
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": nil})

	close(a.release)
	select {
	case lost := <-a.after:
		if len(lost) == 0 {
			t.Fatal("A's ownership check after its produce found nothing lost")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("A never checked ownership again after resuming: its produce did not fail")
	}
	stopA()
	if n, err := gathered(t, regA).Value("streamjoin_ingest_write_errors_total", map[string]string{"class": "dead_letter_fenced"}); err != nil || n < 1 {
		t.Errorf("A's fenced dead-letter produces = %v (%v), want at least 1", n, err)
	}
	e.checkDLQ(t, "user_events", users, true)
}

// gathered is what reg holds now, by family name.
func gathered(t *testing.T, reg *prometheus.Registry) testenv.Metrics {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.Metrics{}
	for _, mf := range mfs {
		m[mf.GetName()] = mf
	}
	return m
}

// TestZombieCommitBeforeSuccessorFences: member A's dead-letter transaction
// is held at its commit (the broker does not see the EndTxn) while member B
// takes the partition over. A's commit is let through at the last moment
// it can still land, just before B initialises the partition's producer id;
// B must read the DLQ tail after that, and so skip what A committed. (Were
// the tail read first, A's commit would come after it and B would produce
// the same dead letters again.)
func TestZombieCommitBeforeSuccessorFences(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(1, "user_events", "org_events"))
	users, _ := workload(8, 50, 300, 5, 0)
	produce(t, e.broker, "user_events", users)
	txnID := dlq.TransactionalID("g", dlq.Partition{Topic: "user_events", Partition: 0})

	held := make(chan struct{})     // A's commit reached the broker
	releaseA := make(chan struct{}) // let it through
	var holding atomic.Bool
	e.cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if r := req.(*kmsg.EndTxnRequest); r.TransactionalID == txnID && r.Commit && holding.CompareAndSwap(false, true) {
			close(held)
			e.cluster.SleepControl(func() { <-releaseA })
		}
		return nil, nil, false
	})

	cfg := e.config(5000)
	cfg.RebalanceTimeout = time.Second
	cfg.ShutdownTimeout = time.Minute
	e.runMember(t, cfg, e.st, prometheus.NewRegistry())
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("member A never committed dead letters")
	}

	// B's producer id initialisation: A's commit goes first, and is
	// visible to read_committed readers before B's request is served.
	var fenced atomic.Bool
	e.cluster.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if r := req.(*kmsg.InitProducerIDRequest); r.TransactionalID == nil || *r.TransactionalID != txnID || !fenced.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		e.cluster.SleepControl(func() {
			close(releaseA)
			for deadline := time.Now().Add(20 * time.Second); e.committedEnd(t, "user_events.dlq") == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Error("A's held commit never became visible")
					return
				}
			}
		})
		return nil, nil, false
	})
	e.runMember(t, cfg, e.st, prometheus.NewRegistry())
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": nil})
	if !fenced.Load() {
		t.Fatal("B never initialised the partition's dead-letter producer")
	}
	e.checkDLQ(t, "user_events", users, true)
}

// committedEnd returns the sum of topic's last stable offsets.
func (e *env) committedEnd(t *testing.T, topic string) int64 {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.broker))
	if err != nil {
		t.Error(err)
		return 0
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(context.Background(), topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Error(err)
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
