package changelog

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	testTopic  = "user_profiles"
	userTopic  = "user_events"
	partitions = 3
)

// env is a kfake broker with the user topic, and a store with the changelog
// on, on a fresh schema.
type env struct {
	broker string
	conn   *kafka.Connector
	st     *store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	broker, _ := testenv.Kafka(t, kfake.SeedTopics(partitions, userTopic))
	conn, err := kafka.New(kafka.Config{Brokers: []string{broker}}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := testenv.ChangelogStore(t)
	return &env{broker: broker, conn: conn, st: st}
}

// relay makes a relay with fast test timings; tune changes its config.
func (e *env) relay(t *testing.T, tune func(*Config)) *Relay {
	t.Helper()
	cfg := Config{
		Topic: testTopic, SourceTopic: userTopic, CreateTopic: true,
		PollInterval: 50 * time.Millisecond, StandbyInterval: 50 * time.Millisecond,
		IdleTimeout: time.Second, RetryBackoffMax: 200 * time.Millisecond,
	}
	if tune != nil {
		tune(&cfg)
	}
	r, err := New(cfg, e.conn, e.st, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs r until the test ends, and fails the test if Run fails.
func start(t *testing.T, r *Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitEmpty waits until the relay has produced and deleted every outbox row.
func (e *env) waitEmpty(t *testing.T) {
	t.Helper()
	conn := testenv.Conn(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rows, commits int
		if err := conn.QueryRow(context.Background(), fmt.Sprintf(
			"SELECT (SELECT count(*) FROM %[1]s.changelog_outbox), (SELECT count(*) FROM %[1]s.changelog_commits)", e.st.Schema())).Scan(&rows, &commits); err != nil {
			t.Fatal(err)
		}
		if rows == 0 && commits == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox still holds %d rows of %d commits", rows, commits)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readTopic reads the changelog read_committed from the start up to the
// last committed record of each partition, as it is now.
func (e *env) readTopic(t *testing.T) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last, err := e.conn.LastRecords(ctx, "test-tail", testTopic, []int32{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(last) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.broker), kgo.ConsumeTopics(testTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(last) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading the changelog: %v (%d partitions not read to their end)", err, len(last))
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if l, ok := last[r.Partition]; ok && r.Offset >= l.Offset {
				delete(last, r.Partition)
			}
		})
	}
	return out
}

// value is a record as the tests compare it: "key=value" or "key=†".
func value(r *kgo.Record) string {
	if r.Value == nil {
		return string(r.Key) + "=†"
	}
	return string(r.Key) + "=" + string(r.Value)
}
