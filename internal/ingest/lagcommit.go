package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lagCommitter copies the offsets committed to PostgreSQL into the consumer
// group's Kafka offsets, for lag tools (kafka-consumer-groups, Burrow,
// kminion). PostgreSQL stays the source of truth; these commits are best
// effort.
//
// It runs apart from the batch loop on purpose: kgo's CommitOffsets waits
// for a join or sync in progress, and the join waits for the batch loop to
// allow the rebalance, so a commit inside the loop can deadlock. Offsets
// requested while a commit is outstanding are merged and sent next.
type lagCommitter struct {
	cl  *kgo.Client
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]map[int32]kgo.EpochOffset
	wake    chan struct{}
}

func newLagCommitter(cl *kgo.Client, log *slog.Logger) *lagCommitter {
	return &lagCommitter{cl: cl, log: log, pending: map[string]map[int32]kgo.EpochOffset{}, wake: make(chan struct{}, 1)}
}

// add queues offsets for the next commit. It never blocks.
func (l *lagCommitter) add(offsets map[string]map[int32]kgo.EpochOffset) {
	l.mu.Lock()
	for topic, parts := range offsets {
		if l.pending[topic] == nil {
			l.pending[topic] = map[int32]kgo.EpochOffset{}
		}
		for p, o := range parts {
			l.pending[topic][p] = o
		}
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run commits queued offsets until ctx ends, then makes one last attempt
// bounded by a few seconds.
func (l *lagCommitter) run(ctx context.Context) {
	for {
		select {
		case <-l.wake:
			l.commit(ctx, 10*time.Second)
		case <-ctx.Done():
			l.commit(context.Background(), 3*time.Second)
			return
		}
	}
}

func (l *lagCommitter) commit(ctx context.Context, timeout time.Duration) {
	l.mu.Lock()
	offsets := l.pending
	l.pending = map[string]map[int32]kgo.EpochOffset{}
	l.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	l.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			l.log.Debug("committing offsets to kafka for lag tools", "err", err)
		}
	})
}
