package ingest_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type env struct {
	broker  string
	cluster *kfake.Cluster
	st      *store.Store
	schema  string
}

func setup(t *testing.T, opts ...kfake.Opt) *env {
	t.Helper()
	broker, cluster := testenv.Kafka(t, opts...)
	st := testenv.Store(t)
	return &env{broker: broker, cluster: cluster, st: st, schema: st.Schema()}
}

// connector reaches the test's broker.
func (e *env) connector(t *testing.T) *kafka.Connector {
	t.Helper()
	conn, err := kafka.New(kafka.Config{Brokers: []string{e.broker}}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func (e *env) config(maxPoll int) ingest.Config {
	return ingest.Config{
		Group:           "g",
		CreateTopics:    true,
		Partitions:      6,
		MaxPollRecords:  maxPoll,
		RetryBackoffMax: 200 * time.Millisecond,
	}
}

// start runs a consumer until the returned stop function is called.
func (e *env) start(t *testing.T, cfg ingest.Config) (stop func()) {
	t.Helper()
	return e.startWith(t, cfg, e.st)
}

// startWith runs a consumer that writes through w.
func (e *env) startWith(t *testing.T, cfg ingest.Config, w ingest.Writer) (stop func()) {
	t.Helper()
	c, err := ingest.New(cfg, e.connector(t), w, nil, testenv.Logger(t))
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

// runUntil runs a consumer writing through w for at most limit, and returns
// its context (to tell a timeout from an error), a cancel function, and the
// channel Run's result arrives on.
func (e *env) runUntil(t *testing.T, cfg ingest.Config, w ingest.Writer, limit time.Duration) (context.Context, context.CancelFunc, <-chan error) {
	t.Helper()
	c, err := ingest.New(cfg, e.connector(t), w, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return ctx, cancel, done
}
