package dlq

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/retry"
)

// Producer produces dead letters and waits for their acknowledgement. Its
// Client must use kgo.ManualPartitioner, so that each record goes to the
// partition Build chose. A Producer is safe for concurrent use as far as its
// Client is; the consumer uses it from one goroutine.
type Producer struct {
	Client *kgo.Client
	Retry  retry.Policy
	Log    *slog.Logger
	// OnFailure, if not nil, is called once for each failed attempt.
	OnFailure func(error)
}

// Produce produces recs and blocks until every one is acknowledged, retrying
// failures with backoff until ctx ends. Only then may the source offsets move
// past them. recs are in source offset order within each partition; after a
// failure, a partition's records are produced again from its first failed
// one, so that the last record of every dead-letter partition is always the
// highest source offset it holds (Tails relies on it).
//
// Before each attempt, keep returns those of the records still to produce
// that may still be produced (the consumer drops the partitions it no longer
// owns); an error from keep ends Produce with that error.
func (p *Producer) Produce(ctx context.Context, recs []*kgo.Record, keep func([]*kgo.Record) ([]*kgo.Record, error)) error {
	pending := recs
	return retry.Do(ctx, p.Retry, p.Log, "producing dead letters", func() error {
		var err error
		if pending, err = keep(pending); err != nil {
			return retry.Permanent(err)
		}
		if len(pending) == 0 {
			return nil
		}
		results := p.Client.ProduceSync(ctx, pending...)
		failedFrom := map[Partition]int{} // partition → index of its first failure
		var firstErr error
		for i, res := range results {
			if res.Err == nil {
				continue
			}
			tp := Partition{res.Record.Topic, res.Record.Partition}
			if _, ok := failedFrom[tp]; !ok {
				failedFrom[tp] = i
			}
			if firstErr == nil {
				firstErr = res.Err
			}
		}
		if len(failedFrom) == 0 {
			pending = nil
			return nil
		}
		var again []*kgo.Record
		for i, res := range results {
			if from, ok := failedFrom[Partition{res.Record.Topic, res.Record.Partition}]; ok && i >= from {
				again = append(again, res.Record)
			}
		}
		pending = again
		if p.OnFailure != nil {
			p.OnFailure(firstErr)
		}
		return fmt.Errorf("%d dead letters not acknowledged; source offsets stay put until they are: %w", len(again), firstErr)
	})
}
