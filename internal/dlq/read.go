package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
)

// Letter is one dead letter.
type Letter struct {
	Topic     string // the dead-letter topic
	Partition int32
	Offset    int64
	Timestamp time.Time

	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	Code            string
	Reason          string

	Key   []byte
	Value []byte
	// Headers are the original record's headers, without streamjoin's.
	Headers []kgo.RecordHeader
}

// Filter selects dead letters. Empty fields match everything.
type Filter struct {
	// Code matches streamjoin.error.code exactly (e.g. bad_timestamp).
	Code string
	// Reason matches a substring of streamjoin.error.
	Reason string
}

// Match reports whether l passes f.
func (f Filter) Match(l *Letter) bool {
	return (f.Code == "" || l.Code == f.Code) && (f.Reason == "" || strings.Contains(l.Reason, f.Reason))
}

// Read calls fn, in offset order per partition, for each dead letter of topic
// that matches filter, from the start of the topic to its last committed
// dead letter when Read was called, read read_committed (a fenced
// producer's aborted dead letters are never shown), with clients from conn.
// An error from fn stops the read and is returned.
func Read(ctx context.Context, topic string, filter Filter, fn func(*Letter) error, conn *kafka.Connector) error {
	meta, err := conn.NewClient("dlq-admin")
	if err != nil {
		return err
	}
	parts, err := partitionsOf(ctx, meta, topic)
	meta.Close()
	if err != nil {
		return err
	}
	lasts, err := conn.LastRecords(ctx, "dlq-tail-reader", topic, parts)
	if err != nil {
		return err
	}
	left := map[int32]int64{} // partition → offset of its last committed dead letter
	for p, r := range lasts {
		left[p] = r.Offset
	}
	if len(left) == 0 {
		return nil
	}
	from := map[int32]kgo.Offset{}
	for p := range left {
		from[p] = kgo.NewOffset().AtStart()
	}
	cl, err := conn.NewClient("dlq-reader",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			fetchErr = errors.Join(fetchErr, fmt.Errorf("fetching %s/%d: %w", t, p, err))
		})
		if fetchErr != nil {
			return fetchErr
		}
		var fnErr error
		fs.EachRecord(func(r *kgo.Record) {
			last, ok := left[r.Partition]
			if fnErr != nil || !ok || r.Offset > last {
				return
			}
			if r.Offset >= last {
				delete(left, r.Partition)
			}
			l := parse(r)
			if filter.Match(l) {
				fnErr = fn(l)
			}
		})
		if fnErr != nil {
			return fnErr
		}
	}
	return nil
}

// partitionsOf lists topic's partitions.
func partitionsOf(ctx context.Context, cl *kgo.Client, topic string) ([]int32, error) {
	meta, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	td, ok := meta.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("metadata of %s: no such topic", topic)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, td.Err)
	}
	return td.Partitions.Numbers(), nil
}
