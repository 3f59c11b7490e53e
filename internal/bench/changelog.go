package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/kafka"
)

// changelogTopic is the pipeline's default --changelog-topic.
const changelogTopic = changelog.DefaultTopic

// waitOutboxEmpty waits until the relay has produced every outbox row of
// schema (it deletes them once their Kafka transaction commits). exited,
// if not nil, is the relay's process ending: that fails the wait.
func waitOutboxEmpty(ctx context.Context, conn *pgx.Conn, schema string, exited <-chan struct{}, limit time.Duration) error {
	if err := waitTableEmpty(ctx, conn, schema, "changelog_commits", exited, limit); err != nil {
		return fmt.Errorf("the changelog relay did not catch up: %w", err)
	}
	return nil
}

// waitTableEmpty waits, up to limit, until schema's table has no row.
// exited, if not nil, is the pipeline's process ending: that fails the
// wait. A failed read is tried again.
func waitTableEmpty(ctx context.Context, conn *pgx.Conn, schema, table string, exited <-chan struct{}, limit time.Duration) error {
	q := "SELECT EXISTS (SELECT 1 FROM " + pgx.Identifier{schema, table}.Sanitize() + ")"
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("the pipeline process exited")
		default:
		}
		var left bool
		if err := conn.QueryRow(ctx, q).Scan(&left); err != nil {
			continue
		}
		if !left {
			return nil
		}
	}
	return fmt.Errorf("%s still not empty after %s", table, limit)
}

// changelogWatch reads the changelog read_committed from its end, and keeps,
// for each record, the time from its state commit (the record's
// committed-at header) to this reader seeing it: the changelog's latency as
// a downstream consumer sees it.
type changelogWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	lat    []float64
	err    error
}

// watchChangelog starts a changelogWatch; stop ends it. It reads from the
// end of the topic as it is when called.
func watchChangelog(ctx context.Context, kc *kafka.Connector) (*changelogWatch, error) {
	cl, err := kc.NewClient("bench-changelog-reader",
		kgo.ConsumeTopics(changelogTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return nil, err
	}
	// Join the partitions' ends before the stream starts.
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	w := &changelogWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cl.Close()
		for rctx.Err() == nil {
			fs := cl.PollFetches(rctx)
			now := time.Now()
			fs.EachError(func(t string, p int32, err error) {
				if rctx.Err() == nil {
					w.mu.Lock()
					w.err = fmt.Errorf("reading %s/%d: %w", t, p, err)
					w.mu.Unlock()
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				at, ok := changelog.CommittedAt(r)
				w.mu.Lock()
				if !ok {
					w.err = fmt.Errorf("changelog record %d/%d has no committed-at header", r.Partition, r.Offset)
				} else {
					w.lat = append(w.lat, float64(now.Sub(at).Microseconds())/1000)
				}
				w.mu.Unlock()
			})
		}
	}()
	return w, nil
}

// stop ends the watch and returns the latencies in ms, sorted. A watch
// that saw no record fails: a figure of nothing is not a figure.
func (w *changelogWatch) stop() ([]float64, error) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	if len(w.lat) == 0 {
		return nil, fmt.Errorf("no changelog record was read")
	}
	sort.Float64s(w.lat)
	return w.lat, nil
}
