package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// finish records what p committed: the new stored offsets, the Kafka copy
// for lag tools, and the metrics.
func (c *Consumer) finish(p *pending, lag *lagCommitter) {
	committedAt := time.Now()
	b := p.b
	c.mu.Lock()
	commit := make(map[string]map[int32]kgo.EpochOffset)
	for _, a := range b.Offsets {
		tp := store.TopicPartition{Topic: a.Topic, Partition: a.Partition}
		if st, ok := c.owned[tp]; ok && st.gen == a.Generation {
			to := a.To
			st.next = &to
			c.owned[tp] = st
			c.behind.committed(tp, to)
		}
		if commit[a.Topic] == nil {
			commit[a.Topic] = make(map[int32]kgo.EpochOffset)
		}
		commit[a.Topic][a.Partition] = kgo.EpochOffset{Epoch: -1, Offset: a.To}
	}
	c.mu.Unlock()
	lag.add(commit)
	// Count only what committed; a fenced partition's records were dropped.
	c.metrics.records.WithLabelValues(c.cfg.UserTopic, "valid").Add(float64(len(b.Users)))
	c.metrics.records.WithLabelValues(c.cfg.OrgTopic, "valid").Add(float64(len(b.Orgs)))
	committed := make(map[store.TopicPartition]bool, len(b.Offsets))
	for _, a := range b.Offsets {
		committed[store.TopicPartition{Topic: a.Topic, Partition: a.Partition}] = true
	}
	for _, d := range p.dead {
		if src := sourceOf(d); committed[src.tp] {
			c.metrics.records.WithLabelValues(src.tp.Topic, "dead_letter").Inc()
			c.progress.deadLetters.Add(1)
			c.metrics.deadLetters.WithLabelValues(src.tp.Topic, dlq.Header(d, dlq.HeaderErrorCode)).Inc()
			c.recent.add(d, time.Now())
		}
	}
	c.metrics.batches.Inc()
	c.progress.records.Add(int64(len(b.Users) + len(b.Orgs)))
	c.progress.batches.Add(1)
	c.metrics.batchSeconds.Observe(time.Since(p.started).Seconds())
	c.metrics.observeFreshness(b, committedAt)
	c.log.Debug("batch committed", "users", len(b.Users), "orgs", len(b.Orgs), "dead_letters", len(p.dead), "took", time.Since(p.started))
}

// writeState commits b's state (store.WriteState). It retries conflicts at
// once and transport failures with backoff, logging a change of state once,
// and returns a permanent error at once.
func (c *Consumer) writeState(ctx context.Context, b *store.Batch) error {
	return retry.Do(ctx, c.retryPolicy(), c.log, "writing state to postgres", func() error {
		for {
			err := c.st.WriteState(ctx, b)
			if err == nil {
				return nil
			}
			if again, err := c.classifyWriteError(err); !again {
				return err
			}
		}
	})
}

// write commits b's raw logs, steps and offsets (store.WriteLog), after its
// state. It retries as writeState does, and returns a permanent error (a
// bug, or data PostgreSQL refuses) at once, which stops the consumer rather
// than retrying what cannot succeed. When PostgreSQL fences some partitions
// (another member claimed them), their records are dropped from the batch,
// this member stops processing them, and the rest is written.
func (c *Consumer) write(ctx context.Context, b *store.Batch, gens map[store.TopicPartition]int64) error {
	return retry.Do(ctx, c.retryPolicy(), c.log, "writing batch to postgres", func() error {
		for {
			err := c.st.WriteLog(ctx, b)
			if err == nil {
				return nil
			}
			var fe *store.FencedError
			if errors.As(err, &fe) {
				c.metrics.writeErrors.WithLabelValues(store.Fenced.String()).Inc()
				c.log.Warn("batch fenced: another member claimed these partitions; dropping them from the batch", "partitions", fe.Partitions)
				c.disown(fe.Partitions, gens)
				dropPartitions(b, fe.Partitions)
				if len(b.Offsets) == 0 {
					return nil
				}
				continue
			}
			if again, err := c.classifyWriteError(err); !again {
				return err
			}
		}
	})
}

// classifyWriteError counts err by class and says what to do with it:
// again (a conflict: retry at once), or return it to retry.Do (a transport
// failure, retried with backoff; anything else, marked permanent).
func (c *Consumer) classifyWriteError(err error) (again bool, _ error) {
	class := store.Classify(err)
	c.metrics.writeErrors.WithLabelValues(class.String()).Inc()
	switch class {
	case store.Conflict:
		c.log.Debug("retrying after a serialization failure or deadlock", "err", err)
		return true, nil
	case store.Unavailable:
		return false, err
	}
	return false, retry.Permanent(fmt.Errorf("writing (%s error): %w", class, err))
}
