package dlq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// A new TxnProducer of a source partition fences every earlier one: an
// earlier producer's next produce fails with ErrFenced and lands nothing,
// and a transaction an earlier producer left open is aborted. Tails and
// Read see committed dead letters only, past the control markers.
func TestTxnProducerFencesEarlierOnes(t *testing.T) {
	t.Parallel()
	broker := setup(t, 10) // partition 0: source offsets 100..108 (even), partition 1: 101..109
	conn := connect(t, broker)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := dlq.Partition{Topic: "user_events", Partition: 0}
	letter := func(offset int64) *kgo.Record {
		return dlq.Build(&kgo.Record{Topic: "user_events", Partition: 0, Offset: offset, Value: []byte("bad")}, "user_events.dlq", errors.New("bad"))
	}
	tails := func() int64 {
		t.Helper()
		got, err := dlq.Tails(ctx, conn, func(s string) string { return s + ".dlq" }, []dlq.Partition{src}, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		return got[src]
	}
	newProducer := func() *dlq.TxnProducer {
		t.Helper()
		p, err := dlq.NewTxnProducer(ctx, conn, "g", src, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}

	first := newProducer()
	if err := first.Produce(ctx, []*kgo.Record{letter(110)}); err != nil {
		t.Fatal(err)
	}
	if got := tails(); got != 110 {
		t.Fatalf("tail after a committed transaction = %d, want 110", got)
	}
	newProducer() // a new owner
	if err := first.Produce(ctx, []*kgo.Record{letter(112)}); !errors.Is(err, dlq.ErrFenced) {
		t.Fatalf("the fenced producer's produce = %v, want ErrFenced", err)
	}
	if got := tails(); got != 110 {
		t.Fatalf("tail after a fenced produce = %d, want 110", got)
	}

	// A transaction left open under the id (a member that died inside it):
	// not waited for, and aborted by the next producer.
	open, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionalID(dlq.TransactionalID("g", src)), kgo.TransactionTimeout(time.Minute), kgo.DisableClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, letter(114)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := tails(); got != 110 {
		t.Fatalf("tail with a transaction open = %d, want 110", got)
	}
	last := newProducer()
	if err := open.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the transaction left open committed after a new producer was initialised")
	}
	if err := last.Produce(ctx, []*kgo.Record{letter(116)}); err != nil {
		t.Fatal(err)
	}
	if got := tails(); got != 116 {
		t.Fatalf("tail = %d, want 116", got)
	}
	var offsets []int64
	err = dlq.Read(ctx, "user_events.dlq", dlq.Filter{}, func(l *dlq.Letter) error {
		if l.Partition == 0 {
			offsets = append(offsets, l.SourceOffset)
		}
		return nil
	}, conn)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{100, 102, 104, 106, 108, 110, 116}
	if len(offsets) != len(want) {
		t.Fatalf("dlq.Read partition 0: source offsets %v, want %v", offsets, want)
	}
	for i := range want {
		if offsets[i] != want[i] {
			t.Fatalf("dlq.Read partition 0: source offsets %v, want %v", offsets, want)
		}
	}
}
