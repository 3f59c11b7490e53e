package dlq

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
)

// HeaderReplayedFrom marks a replayed record with the dead letter it came
// from: "<dlq topic>/<partition>/<offset>".
const HeaderReplayedFrom = "streamjoin.replayed.from"

// ReplayResult counts what Replay did.
type ReplayResult struct {
	Matched  int
	Replayed int
	// Duplicates counts matching dead letters skipped because another has
	// the same source topic, partition and offset (the one at the least
	// dead-letter partition and offset is replayed).
	Duplicates int
	// Topics counts replayed records per source topic.
	Topics map[string]int
}

// Replay produces every dead letter of topic that matches filter back to its
// source topic, with its original key, value and headers plus
// HeaderReplayedFrom, and waits for the acknowledgements. With dryRun it only
// counts. Replay is at-least-once: running it twice produces the records
// twice, which the pipeline's event-time upserts make harmless for the state
// (the raw logs will hold both). A dead letter without a source topic is an
// error.
func Replay(ctx context.Context, topic string, filter Filter, dryRun bool, conn *kafka.Connector) (ReplayResult, error) {
	res := ReplayResult{Topics: map[string]int{}}
	var recs []*kgo.Record
	type source struct {
		topic     string
		partition int32
		offset    int64
	}
	// Of the letters of one source position, the one at the least
	// dead-letter position is replayed, whatever order the partitions are
	// read in.
	first := map[source]*Letter{}
	err := Read(ctx, topic, filter, func(l *Letter) error {
		res.Matched++
		if l.SourceTopic == "" {
			return fmt.Errorf("dead letter %s/%d/%d has no %s header; it was not written by streamjoin", l.Topic, l.Partition, l.Offset, HeaderSourceTopic)
		}
		src := source{l.SourceTopic, l.SourcePartition, l.SourceOffset}
		if prev, ok := first[src]; ok {
			res.Duplicates++
			if prev.Partition < l.Partition || (prev.Partition == l.Partition && prev.Offset < l.Offset) {
				return nil
			}
		}
		first[src] = l
		return nil
	}, conn)
	if err != nil {
		return res, err
	}
	letters := make([]*Letter, 0, len(first))
	for _, l := range first {
		letters = append(letters, l)
	}
	sort.Slice(letters, func(i, j int) bool {
		a, b := letters[i], letters[j]
		return a.Partition < b.Partition || (a.Partition == b.Partition && a.Offset < b.Offset)
	})
	for _, l := range letters {
		headers := append(append([]kgo.RecordHeader(nil), l.Headers...), kgo.RecordHeader{
			Key: HeaderReplayedFrom, Value: fmt.Appendf(nil, "%s/%d/%d", l.Topic, l.Partition, l.Offset),
		})
		recs = append(recs, &kgo.Record{Topic: l.SourceTopic, Key: l.Key, Value: l.Value, Headers: headers})
	}
	if dryRun || len(recs) == 0 {
		return res, nil
	}
	cl, err := conn.NewClient("dlq-replay")
	if err != nil {
		return res, err
	}
	defer cl.Close()
	var firstErr error
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			if firstErr == nil {
				firstErr = r.Err
			}
			continue
		}
		res.Replayed++
		res.Topics[r.Record.Topic]++
	}
	if firstErr != nil {
		return res, fmt.Errorf("replaying: %d of %d records failed: %w", len(recs)-res.Replayed, len(recs), firstErr)
	}
	return res, nil
}
