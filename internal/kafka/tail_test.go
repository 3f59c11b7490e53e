package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LastRecords returns, per partition, the last committed data record read
// read_committed, stepping back over control markers and aborted batches,
// and nothing for a partition without one.
func TestLastRecords(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(9, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	plain := client(t, brokers)
	txn := func(p int32, commit bool, values ...string) {
		t.Helper()
		cl := client(t, brokers, kgo.TransactionalID(fmt.Sprintf("tail-test-%d", p)), kgo.TransactionTimeout(10*time.Second))
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, recs(p, values...)...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	// 0: empty.
	// 1: a committed transaction.
	txn(1, true, "a", "b")
	// 2: an aborted transaction after a committed one.
	txn(2, true, "a", "b")
	txn(2, false, "c", "d")
	// 3: records without transactions.
	if err := plain.ProduceSync(ctx, recs(3, "a", "b", "c")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// 4: only an aborted transaction.
	txn(4, false, "a")
	// 5: emptied by retention.
	if err := plain.ProduceSync(ctx, recs(5, "a", "b")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	offs.AddOffset("t", 5, 2, -1)
	if res, err := kadm.NewClient(plain).DeleteRecords(ctx, offs); err != nil || res.Error() != nil {
		t.Fatalf("deleting records: %v %v", err, res.Error())
	}
	// 6: a committed record behind more aborted records than the first
	// window holds, in several transactions.
	txn(6, true, "a")
	for range 5 {
		txn(6, false, values(40)...)
	}
	// 7: a transaction still open after a committed record: not waited
	// for, and none of its records returned.
	txn(7, true, "a")
	open := client(t, brokers, kgo.TransactionalID("tail-test-open"), kgo.TransactionTimeout(time.Minute))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, recs(7, "b")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// 8: a committed transaction after an aborted one.
	txn(8, false, "a")
	txn(8, true, "b", "c")

	conn, err := New(Config{Brokers: brokers}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := conn.LastRecords(ctx, "tail-test", "t", []int32{0, 1, 2, 3, 4, 5, 6, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]struct {
		value  string
		offset int64
	}{
		1: {"b", 1},
		2: {"b", 1},
		3: {"c", 2},
		6: {"a", 0},
		7: {"a", 0},
		8: {"c", 3}, // a, its abort marker, b, c
	}
	for p, w := range want {
		r, ok := got[p]
		if !ok {
			t.Errorf("partition %d: no record, want %q at %d", p, w.value, w.offset)
			continue
		}
		if string(r.Value) != w.value || r.Offset != w.offset || r.Partition != p || r.Topic != "t" {
			t.Errorf("partition %d: got %s/%d %q at %d, want %q at %d", p, r.Topic, r.Partition, r.Value, r.Offset, w.value, w.offset)
		}
	}
	for p, r := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("partition %d: got %q at %d, want none", p, r.Value, r.Offset)
		}
	}
	if err := open.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}

func client(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DisableClientMetrics(), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func recs(p int32, values ...string) []*kgo.Record {
	out := make([]*kgo.Record, len(values))
	for i, v := range values {
		out[i] = &kgo.Record{Partition: p, Value: []byte(v)}
	}
	return out
}

func values(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint("aborted-", i)
	}
	return out
}
