package ingest

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// deadLetter builds the dead letter of r (internal/dlq owns the format).
func (c *Consumer) deadLetter(r *kgo.Record, cause error) *kgo.Record {
	c.log.Debug("dead letter", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", cause)
	return dlq.Build(r, c.DLQTopic(r.Topic), cause)
}

// produceDeadLetters produces a batch's dead letters, acknowledged, before
// any transaction can move the offsets past them. It blocks until they are
// acknowledged or ctx ends.
//
// First it drops those a crashed or replaced predecessor already produced
// (the partitions in unread have not had their dead-letter tail read under
// this claim). Then, right before each produce attempt, it checks in
// PostgreSQL that this member still owns the partitions: a member that lost
// them must not add their dead letters after its successor read the tail.
// Lost partitions are dropped from b and from the dead letters. It returns
// the dead letters that were produced.
func (c *Consumer) produceDeadLetters(ctx context.Context, cl *kgo.Client, b *store.Batch, dead []*kgo.Record, unread []store.TopicPartition, gens map[store.TopicPartition]int64) ([]*kgo.Record, error) {
	if len(unread) > 0 {
		var err error
		if dead, err = c.dropProduced(ctx, dead, unread, gens); err != nil {
			return nil, err
		}
	}
	owned := func(recs []*kgo.Record) ([]*kgo.Record, error) {
		var lost []store.TopicPartition
		err := retry.Do(ctx, c.retryPolicy(), c.log, "checking partition ownership", func() error {
			var err error
			if lost, err = c.st.LostPartitions(ctx, b.Offsets); err != nil {
				c.metrics.writeErrors.WithLabelValues(store.Classify(err).String()).Inc()
				if store.Classify(err) != store.Unavailable {
					return retry.Permanent(fmt.Errorf("checking partition ownership: %w", err))
				}
			}
			return err
		})
		if err != nil || len(lost) == 0 {
			return recs, err
		}
		c.log.Warn("partitions claimed by another member; dropping them from the batch", "partitions", lost)
		c.disown(lost, gens)
		dropPartitions(b, lost)
		dead = dropDeadLetters(dead, lost)
		return dropDeadLetters(recs, lost), nil
	}
	p := dlq.Producer{
		Client:    cl,
		Retry:     c.retryPolicy(),
		Log:       c.log,
		OnFailure: func(error) { c.metrics.writeErrors.WithLabelValues("dead_letter_produce").Inc() },
	}
	if err := p.Produce(ctx, dead, owned); err != nil {
		return nil, err
	}
	c.mu.Lock()
	for _, d := range dead {
		src := sourceOf(d)
		if st, ok := c.owned[src.tp]; ok && st.gen == gens[src.tp] {
			st.dlqDone = max(st.dlqDone, src.offset)
			c.owned[src.tp] = st
		}
	}
	c.mu.Unlock()
	return dead, nil
}

// dropProduced reads the dead-letter tails of the partitions in unread,
// records them, and returns dead without the dead letters already there: a
// crashed or replaced predecessor produced them.
func (c *Consumer) dropProduced(ctx context.Context, dead []*kgo.Record, unread []store.TopicPartition, gens map[store.TopicPartition]int64) ([]*kgo.Record, error) {
	sources := make([]dlq.Partition, len(unread))
	for i, tp := range unread {
		sources[i] = dlq.Partition{Topic: tp.Topic, Partition: tp.Partition}
	}
	var tails map[dlq.Partition]int64
	err := retry.Do(ctx, c.retryPolicy(), c.log, "reading the last dead letters", func() error {
		var err error
		tails, err = dlq.Tails(ctx, c.conn, c.DLQTopic, sources, c.log)
		return err
	})
	if err != nil {
		return nil, err
	}
	done := make(map[store.TopicPartition]int64, len(tails))
	for p, off := range tails {
		done[store.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = off
	}
	c.mu.Lock()
	for _, tp := range unread {
		if st, ok := c.owned[tp]; ok && st.gen == gens[tp] && st.dlqDone == dlqUnread {
			st.dlqDone = done[tp]
			c.owned[tp] = st
		}
	}
	c.mu.Unlock()
	kept := dead[:0]
	redundant := 0
	for _, d := range dead {
		src := sourceOf(d)
		if last, ok := done[src.tp]; ok && src.offset <= last {
			redundant++
			continue
		}
		kept = append(kept, d)
	}
	if redundant > 0 {
		c.log.Info("dead letters already produced by a previous owner were not produced again", "count", redundant)
	}
	return kept, nil
}

// dropDeadLetters returns, in a new slice, the dead letters whose source
// partition is not in tps.
func dropDeadLetters(dead []*kgo.Record, tps []store.TopicPartition) []*kgo.Record {
	gone := make(map[store.TopicPartition]bool, len(tps))
	for _, tp := range tps {
		gone[tp] = true
	}
	// A new slice: callers filter slices that share a backing array.
	kept := make([]*kgo.Record, 0, len(dead))
	for _, d := range dead {
		if !gone[sourceOf(d).tp] {
			kept = append(kept, d)
		}
	}
	return kept
}

// source is a dead letter's source position, keyed for the store's maps.
type source struct {
	tp     store.TopicPartition
	offset int64
}

// sourceOf reads the source position of a dead letter deadLetter built.
func sourceOf(d *kgo.Record) source {
	s, _ := dlq.SourceOf(d)
	return source{store.TopicPartition{Topic: s.Topic, Partition: s.Partition.Partition}, s.Offset}
}
