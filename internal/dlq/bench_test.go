package dlq_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// BenchmarkDeadLetterBatch is the cost of one batch's dead letters on
// kfake: 300 dead letters over 6 source partitions (a 10,000-record poll
// at 3 % invalid), produced as the consumer did before transactions (one
// idempotent ProduceSync, acknowledged) and as it does now (one transaction
// per source partition, all at once, each committed). fence is the one-off
// cost per claim: initialising a partition's producer id and reading its
// tail.
func BenchmarkDeadLetterBatch(b *testing.B) {
	const parts, perPart = 6, 50
	broker, _ := testenv.Kafka(b, kfake.SeedTopics(parts, "user_events", "user_events.dlq"))
	conn := connect(b, broker)
	ctx := context.Background()
	batch := func(base int64) [][]*kgo.Record {
		out := make([][]*kgo.Record, parts)
		for p := range parts {
			for i := range perPart {
				r := &kgo.Record{Topic: "user_events", Partition: int32(p), Offset: base + int64(i), Value: []byte(`{"id":"x","event_type":"User Created","username":"","received_at":"2021-03-01 00:00:00"}`)}
				out[p] = append(out[p], dlq.Build(r, "user_events.dlq", errors.New("missing_field: username is required for User Created")))
			}
		}
		return out
	}
	b.Run("plain", func(b *testing.B) {
		cl, err := conn.NewClient("bench-plain", kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableClientMetrics())
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		var base int64
		for b.Loop() {
			var all []*kgo.Record
			for _, recs := range batch(base) {
				all = append(all, recs...)
			}
			base += perPart
			if err := cl.ProduceSync(ctx, all...).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
	})
	producers := make([]*dlq.TxnProducer, parts)
	for p := range parts {
		var err error
		if producers[p], err = dlq.NewTxnProducer(ctx, conn, "bench", dlq.Partition{Topic: "user_events", Partition: int32(p)}, 0); err != nil {
			b.Fatal(err)
		}
		defer producers[p].Close()
	}
	b.Run("txn", func(b *testing.B) {
		var base int64
		for b.Loop() {
			recs := batch(base)
			base += perPart
			var wg sync.WaitGroup
			errs := make([]error, parts)
			for p := range parts {
				wg.Go(func() { errs[p] = producers[p].Produce(ctx, recs[p]) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fence", func(b *testing.B) {
		src := dlq.Partition{Topic: "user_events", Partition: 0}
		for b.Loop() {
			p, err := dlq.NewTxnProducer(ctx, conn, "bench-fence", src, 0)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := dlq.Tails(ctx, conn, func(s string) string { return s + ".dlq" }, []dlq.Partition{src}, testenv.Logger(b)); err != nil {
				b.Fatal(err)
			}
			p.Close()
		}
	})
}
