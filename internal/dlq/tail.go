package dlq

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
)

// Tails reads the last record of the dead-letter partition of each source
// partition in sources and returns, for each, the source offset that record
// came from (-1 where the dead-letter partition is empty). topicOf names a
// source topic's dead-letter topic. Dead letters of source partition p go to
// dead-letter partition p in source offset order, so that record is the
// highest source offset already dead-lettered. A partition that retention
// has emptied counts as empty: what it held was committed long ago.
//
// It blocks until every tail is read, ctx ends, or 30 s pass. Its clients
// are its own (it runs inside the group client's callbacks) and are closed
// on return. A last record not written by Build for that source partition
// is logged and counts as none.
func Tails(ctx context.Context, conn *kafka.Connector, topicOf func(source string) string, sources []Partition, logger *slog.Logger) (map[Partition]int64, error) {
	out := make(map[Partition]int64, len(sources))
	var topics []string
	seen := map[string]bool{}
	for _, tp := range sources {
		out[tp] = -1
		if t := topicOf(tp.Topic); !seen[t] {
			seen[t] = true
			topics = append(topics, t)
		}
	}
	admCl, err := conn.NewClient("dlq-admin")
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing dead-letter end offsets: %w", err)
	}
	// A partition that retention emptied has an end above 0 and nothing
	// left to read: its start offset is its end.
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing dead-letter start offsets: %w", err)
	}
	want := map[string]map[int32]kgo.Offset{}
	last := map[Partition]int64{} // dead-letter partition → its last offset
	for _, tp := range sources {
		dl := Partition{topicOf(tp.Topic), tp.Partition}
		e, ok := ends.Lookup(dl.Topic, dl.Partition)
		if !ok {
			return nil, fmt.Errorf("dead-letter partition %s/%d does not exist", dl.Topic, dl.Partition)
		}
		if e.Err != nil {
			return nil, fmt.Errorf("listing end offset of %s/%d: %w", dl.Topic, dl.Partition, e.Err)
		}
		if st, ok := starts.Lookup(dl.Topic, dl.Partition); e.Offset <= 0 || (ok && st.Err == nil && st.Offset >= e.Offset) {
			continue
		}
		if want[dl.Topic] == nil {
			want[dl.Topic] = map[int32]kgo.Offset{}
		}
		want[dl.Topic][dl.Partition] = kgo.NewOffset().At(e.Offset - 1)
		last[dl] = e.Offset - 1
	}
	if len(want) == 0 {
		return out, nil
	}
	rd, err := conn.NewClient("dlq-tail-reader", kgo.ConsumePartitions(want))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(last) > 0 {
		fs := rd.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the last dead letters (%d partitions left): %w", len(last), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			dl := Partition{r.Topic, r.Partition}
			if off, ok := last[dl]; !ok || r.Offset != off {
				return
			}
			delete(last, dl)
			src, ok := SourceOf(r)
			if _, mine := out[src.Partition]; !ok || !mine || src.Partition.Partition != r.Partition {
				logger.Warn("the last record of a dead-letter partition was not written by streamjoin for its source partition; dead letters of that partition may be produced again", "dlq", r.Topic, "partition", r.Partition, "offset", r.Offset)
				return
			}
			out[src.Partition] = src.Offset
		})
	}
	return out, nil
}
