package dlq

import (
	"context"
	"log/slog"
	"time"

	"github.com/streamjoin/streamjoin/internal/kafka"
)

// Tails reads the last committed dead letter of the dead-letter partition
// of each source partition in sources, read_committed, and returns, for
// each, the source offset it came from (-1 where there is none). topicOf
// names a source topic's dead-letter topic. Dead letters of source
// partition p go to dead-letter partition p in source offset order, so that
// record is the highest source offset already dead-lettered. A partition
// that retention has emptied counts as empty: what it held was committed
// long ago. Aborted dead letters (a fenced producer's) do not count, and a
// transaction still open is not waited for: call Tails after initialising
// the partition's producer (NewTxnProducer), which aborts any left open by
// an earlier owner.
//
// It blocks until every tail is read, ctx ends, or 30 s pass. Its clients
// are its own (kafka.Connector.LastRecords) and are closed on return. A last
// record not written by Build for that source partition is logged and
// counts as none.
func Tails(ctx context.Context, conn *kafka.Connector, topicOf func(source string) string, sources []Partition, logger *slog.Logger) (map[Partition]int64, error) {
	out := make(map[Partition]int64, len(sources))
	byTopic := map[string][]int32{} // dead-letter topic → partitions
	for _, tp := range sources {
		out[tp] = -1
		t := topicOf(tp.Topic)
		byTopic[t] = append(byTopic[t], tp.Partition)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for topic, parts := range byTopic {
		last, err := conn.LastRecords(rctx, "dlq-tail-reader", topic, parts)
		if err != nil {
			return nil, err
		}
		for p, r := range last {
			src, ok := SourceOf(r)
			if _, mine := out[src.Partition]; !ok || !mine || src.Partition.Partition != p {
				logger.Warn("the last record of a dead-letter partition was not written by streamjoin for its source partition; dead letters of that partition may be produced again", "dlq", r.Topic, "partition", r.Partition, "offset", r.Offset)
				continue
			}
			out[src.Partition] = src.Offset
		}
	}
	return out, nil
}
