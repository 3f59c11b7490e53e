package bench

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// broker is an in-process kfake cluster seeded with the source topics, and
// the Connector every benchmark client to it is built from.
type broker struct {
	cluster *kfake.Cluster
	addr    string
	kafka   *kafka.Connector
}

// newBroker starts a broker; the caller must close it. Its clients log
// warnings and errors to logger.
func newBroker(logger *slog.Logger) (*broker, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, userTopic, orgTopic))
	if err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	addr := c.ListenAddrs()[0]
	kc, err := kafka.New(kafka.Config{Brokers: []string{addr}, ClientID: "streamjoin-bench"}, logger, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &broker{cluster: c, addr: addr, kafka: kc}, nil
}

func (k *broker) close() { k.cluster.Close() }

// firstError keeps the first error it is given; it is goroutine-safe, for
// produce callbacks.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// produceAll produces records as fast as the broker takes them, waits for
// every acknowledgement, and returns how many went to each topic, or the
// first produce error.
func produceAll(ctx context.Context, kc *kafka.Connector, next func() (workload.Record, bool)) (map[string]int64, error) {
	cl, err := kc.NewClient("bench-producer", kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	counts := map[string]int64{}
	var failed firstError
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
				failed.set(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	if err := failed.get(); err != nil {
		return nil, fmt.Errorf("producing: %w", err)
	}
	return counts, nil
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
