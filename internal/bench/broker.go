package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/workload"
)

// newBroker starts an in-process broker with the source topics.
func newBroker() (*kfake.Cluster, string, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, userTopic, orgTopic))
	if err != nil {
		return nil, "", err
	}
	return c, c.ListenAddrs()[0], nil
}

// produceAll produces records as fast as the broker takes them and returns
// how many went to each topic.
func produceAll(ctx context.Context, broker string, next func() (workload.Record, bool)) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	counts := map[string]int64{}
	var mu sync.Mutex
	var firstErr error
	for {
		r, ok := next()
		if !ok {
			break
		}
		topic := userTopic
		if r.Kind == workload.OrgEvent {
			topic = orgTopic
		}
		counts[topic]++
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	return counts, firstErr
}

// committed returns the sum of the stored next offsets per topic.
func committed(ctx context.Context, conn *pgx.Conn, schema string) (map[string]int64, error) {
	rows, err := conn.Query(ctx, "SELECT topic, coalesce(sum(next_offset), 0)::bigint FROM "+pgx.Identifier{schema, "kafka_offsets"}.Sanitize()+" GROUP BY topic")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var topic string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&topic, &n}, func() error { out[topic] = n; return nil })
	return out, err
}

// waitCommitted waits until the stored offsets cover want.
func waitCommitted(ctx context.Context, conn *pgx.Conn, schema string, want map[string]int64, p *proc, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("the pipeline process exited")
		default:
		}
		got, err := committed(ctx, conn, schema)
		if err != nil {
			continue
		}
		if got[userTopic] >= want[userTopic] && got[orgTopic] >= want[orgTopic] {
			return nil
		}
	}
	return errNotCaughtUp
}
