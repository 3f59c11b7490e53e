package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// maxFences is how many times in a row one batch's dead letters of a
// partition may be refused as fenced while PostgreSQL still says this
// member owns it (a transaction the broker timed out, say) before the
// member gives the partition up as lost. A fence by a successor is seen in
// PostgreSQL on the next attempt.
const maxFences = 3

// dlqProducer is the dead-letter producer of a source partition under one
// claim of it, with its tail already read. Consumer.dlqProducers holds them;
// only the polling goroutine touches it (prepare, and Run after the loop).
type dlqProducer struct {
	p   *dlq.TxnProducer
	gen int64
}

// deadLetter builds the dead letter of r (internal/dlq owns the format).
func (c *Consumer) deadLetter(r *kgo.Record, cause error) *kgo.Record {
	c.log.Debug("dead letter", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", cause)
	return dlq.Build(r, c.DLQTopic(r.Topic), cause)
}

// produceDeadLetters produces a batch's dead letters, committed, before any
// transaction can move the offsets past them. It blocks until they are
// committed or ctx ends. It runs on the polling goroutine only (the
// producers are its own).
//
// Each source partition's dead letters are produced in Kafka transactions
// under the partition's own transactional id (dlq.TransactionalID). Each
// attempt:
//
//  1. checks in PostgreSQL that this member still owns the partitions, and
//     drops the lost ones from b and from the dead letters;
//  2. for a partition without a producer under this claim (its first dead
//     letter since the claim, or after a failure), creates one, which
//     fences every earlier producer of the partition's dead letters (a
//     paused predecessor's produce can never land after this), then reads
//     the DLQ tail read_committed and drops the dead letters already there;
//  3. produces each partition's dead letters in one transaction, all
//     partitions at once.
//
// A partition whose transaction fails loses its producer and starts again
// at 2 on the next attempt; one refused as fenced is, at 1, found lost (a
// successor claimed it) and dropped without stalling the others. It
// returns the dead letters this member produced.
func (c *Consumer) produceDeadLetters(ctx context.Context, _ *kgo.Client, b *store.Batch, dead []*kgo.Record, _ []store.TopicPartition, gens map[store.TopicPartition]int64) ([]*kgo.Record, error) {
	c.closeStaleProducers()
	pending := byPartition(dead)
	var produced []*kgo.Record
	fences := map[store.TopicPartition]int{}
	drop := func(lost []store.TopicPartition) {
		c.disown(lost, gens)
		dropPartitions(b, lost)
		for _, tp := range lost {
			delete(pending, tp)
			c.closeProducer(tp)
		}
	}
	err := retry.Do(ctx, c.retryPolicy(), c.log, "producing dead letters", func() error {
		lost, err := c.lostPartitions(ctx, b)
		if err != nil {
			return retry.Permanent(err)
		}
		if len(lost) > 0 {
			c.log.Warn("partitions claimed by another member; dropping them from the batch", "partitions", lost)
			drop(lost)
		}
		if err := c.fenceAndReadTails(ctx, pending, gens); err != nil {
			return err
		}
		errs := c.produceTxns(ctx, pending)
		var firstErr error
		var gone []store.TopicPartition
		for tp, err := range errs {
			if err == nil {
				produced = append(produced, pending[tp]...)
				c.advanceDLQDone(tp, gens[tp], pending[tp])
				delete(pending, tp)
				continue
			}
			c.closeProducer(tp)
			if firstErr == nil {
				firstErr = err
			}
			if !errors.Is(err, dlq.ErrFenced) {
				c.metrics.writeErrors.WithLabelValues("dead_letter_produce").Inc()
				continue
			}
			c.metrics.writeErrors.WithLabelValues("dead_letter_fenced").Inc()
			if fences[tp]++; fences[tp] >= maxFences {
				gone = append(gone, tp)
			}
		}
		if len(gone) > 0 {
			c.log.Warn("dead-letter producers fenced again and again while PostgreSQL says this member owns their partitions; giving them up", "partitions", gone)
			drop(gone)
		}
		if firstErr != nil && len(pending) > 0 {
			return fmt.Errorf("dead letters of %d partitions not committed; their source offsets stay put until they are: %w", len(pending), firstErr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return produced, nil
}

// lostPartitions asks PostgreSQL which of b's partitions this member no
// longer owns, retrying transport failures until ctx ends.
func (c *Consumer) lostPartitions(ctx context.Context, b *store.Batch) ([]store.TopicPartition, error) {
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
	return lost, err
}

// fenceAndReadTails gives each partition of pending without a producer
// under its claim one, which fences earlier producers of its dead letters,
// and then reads the partitions' DLQ tails and drops from pending the dead
// letters already there: a predecessor (or this member, before a failure)
// committed them. A producer is kept only once its tail is read.
func (c *Consumer) fenceAndReadTails(ctx context.Context, pending map[store.TopicPartition][]*kgo.Record, gens map[store.TopicPartition]int64) error {
	var need []store.TopicPartition
	for tp := range pending {
		if pr, ok := c.dlqProducers[tp]; !ok || pr.gen != gens[tp] {
			c.closeProducer(tp)
			need = append(need, tp)
		}
	}
	if len(need) == 0 {
		return nil
	}
	made := make(map[store.TopicPartition]*dlq.TxnProducer, len(need))
	keep := false
	defer func() {
		if !keep {
			for _, p := range made {
				p.Close()
			}
		}
	}()
	sources := make([]dlq.Partition, len(need))
	for i, tp := range need {
		sources[i] = dlq.Partition{Topic: tp.Topic, Partition: tp.Partition}
		p, err := dlq.NewTxnProducer(ctx, c.conn, c.cfg.Group, sources[i], dlq.DefaultTxnTimeout)
		if err != nil {
			return err
		}
		made[tp] = p
	}
	tails, err := dlq.Tails(ctx, c.conn, c.DLQTopic, sources, c.log)
	if err != nil {
		return err
	}
	keep = true
	redundant := 0
	for _, tp := range need {
		c.dlqProducers[tp] = dlqProducer{p: made[tp], gen: gens[tp]}
	}
	c.mu.Lock()
	for _, tp := range need {
		done := tails[dlq.Partition{Topic: tp.Topic, Partition: tp.Partition}]
		if st, ok := c.owned[tp]; ok && st.gen == gens[tp] {
			st.dlqDone = done
			c.owned[tp] = st
		}
		kept := pending[tp][:0]
		for _, d := range pending[tp] {
			if sourceOf(d).offset <= done {
				redundant++
				continue
			}
			kept = append(kept, d)
		}
		if len(kept) == 0 {
			delete(pending, tp)
		} else {
			pending[tp] = kept
		}
	}
	c.mu.Unlock()
	if redundant > 0 {
		c.log.Info("dead letters already committed by a previous owner were not produced again", "count", redundant)
	}
	return nil
}

// produceTxns produces each partition's dead letters in one transaction,
// all partitions at once, and returns each one's outcome.
func (c *Consumer) produceTxns(ctx context.Context, pending map[store.TopicPartition][]*kgo.Record) map[store.TopicPartition]error {
	out := make(map[store.TopicPartition]error, len(pending))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for tp, recs := range pending {
		p := c.dlqProducers[tp].p
		wg.Go(func() {
			err := p.Produce(ctx, recs)
			mu.Lock()
			out[tp] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// advanceDLQDone records that the dead letters of tp up to the last of
// recs are committed under claim gen.
func (c *Consumer) advanceDLQDone(tp store.TopicPartition, gen int64, recs []*kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.owned[tp]; ok && st.gen == gen {
		for _, d := range recs {
			st.dlqDone = max(st.dlqDone, sourceOf(d).offset)
		}
		c.owned[tp] = st
	}
}

// closeStaleProducers closes the producers of partitions this member no
// longer owns under the claim they were made for.
func (c *Consumer) closeStaleProducers() {
	c.mu.Lock()
	var stale []store.TopicPartition
	for tp, pr := range c.dlqProducers {
		if st, ok := c.owned[tp]; !ok || st.gen != pr.gen {
			stale = append(stale, tp)
		}
	}
	c.mu.Unlock()
	for _, tp := range stale {
		c.closeProducer(tp)
	}
}

// closeProducer closes tp's producer, if any.
func (c *Consumer) closeProducer(tp store.TopicPartition) {
	if pr, ok := c.dlqProducers[tp]; ok {
		delete(c.dlqProducers, tp)
		pr.p.Close()
	}
}

// closeProducers closes every dead-letter producer; Run calls it once the
// polling loop has ended.
func (c *Consumer) closeProducers() {
	for tp := range c.dlqProducers {
		c.closeProducer(tp)
	}
}

// byPartition groups dead letters by source partition, in order.
func byPartition(dead []*kgo.Record) map[store.TopicPartition][]*kgo.Record {
	out := make(map[store.TopicPartition][]*kgo.Record)
	for _, d := range dead {
		tp := sourceOf(d).tp
		out[tp] = append(out[tp], d)
	}
	return out
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
