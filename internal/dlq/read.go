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
// that matches filter, from the start of the topic to its end when Read was
// called, with clients from conn. An
// error from fn stops the read and is returned.
func Read(ctx context.Context, topic string, filter Filter, fn func(*Letter) error, conn *kafka.Connector) error {
	adm, err := conn.NewClient("dlq-admin")
	if err != nil {
		return err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	starts, err := kadm.NewClient(adm).ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("listing start offsets of %s: %w", topic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); o.Offset > 0 && (!ok || s.Offset < o.Offset) {
			left[o.Partition] = o.Offset
		}
	})
	if len(left) == 0 {
		return nil
	}
	parts := map[int32]kgo.Offset{}
	for p := range left {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := conn.NewClient("dlq-reader", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
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
			end, ok := left[r.Partition]
			if fnErr != nil || !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
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
