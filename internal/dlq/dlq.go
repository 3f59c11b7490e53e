// Package dlq reads dead-letter topics and replays their records to the
// topics they came from: the `streamjoin dlq list` and `streamjoin dlq
// replay` commands.
//
// A dead letter is the original record (key, value, headers) with the headers
// the consumer adds: streamjoin.error, streamjoin.error.code and the source
// topic, partition and offset.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/ingest"
)

// HeaderReplayedFrom marks a replayed record with the dead letter it came
// from: "<dlq topic>/<partition>/<offset>".
const HeaderReplayedFrom = "streamjoin.replayed.from"

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
// called. opts configure the Kafka client (at least kgo.SeedBrokers). An
// error from fn stops the read and is returned.
func Read(ctx context.Context, topic string, filter Filter, fn func(*Letter) error, opts ...kgo.Opt) error {
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
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
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))...)
	if err != nil {
		return fmt.Errorf("creating kafka consumer: %w", err)
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

func parse(r *kgo.Record) *Letter {
	l := &Letter{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		switch h.Key {
		case ingest.HeaderError:
			l.Reason = string(h.Value)
		case ingest.HeaderErrorCode:
			l.Code = string(h.Value)
		case ingest.HeaderSourceTopic:
			l.SourceTopic = string(h.Value)
		case ingest.HeaderSourcePartition:
			p, _ := strconv.ParseInt(string(h.Value), 10, 32)
			l.SourcePartition = int32(p)
		case ingest.HeaderSourceOffset:
			l.SourceOffset, _ = strconv.ParseInt(string(h.Value), 10, 64)
		default:
			l.Headers = append(l.Headers, h)
		}
	}
	return l
}

// ReplayResult counts what Replay did.
type ReplayResult struct {
	Matched  int
	Replayed int
	// Duplicates counts matching dead letters skipped because one with the
	// same source topic, partition and offset came earlier.
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
func Replay(ctx context.Context, topic string, filter Filter, dryRun bool, opts ...kgo.Opt) (ReplayResult, error) {
	res := ReplayResult{Topics: map[string]int{}}
	var recs []*kgo.Record
	type source struct {
		topic     string
		partition int32
		offset    int64
	}
	seen := map[source]bool{}
	err := Read(ctx, topic, filter, func(l *Letter) error {
		res.Matched++
		if l.SourceTopic == "" {
			return fmt.Errorf("dead letter %s/%d/%d has no %s header; it was not written by streamjoin", l.Topic, l.Partition, l.Offset, ingest.HeaderSourceTopic)
		}
		src := source{l.SourceTopic, l.SourcePartition, l.SourceOffset}
		if seen[src] {
			res.Duplicates++
			return nil
		}
		seen[src] = true
		headers := append(append([]kgo.RecordHeader(nil), l.Headers...), kgo.RecordHeader{
			Key: HeaderReplayedFrom, Value: fmt.Appendf(nil, "%s/%d/%d", l.Topic, l.Partition, l.Offset),
		})
		recs = append(recs, &kgo.Record{Topic: l.SourceTopic, Key: l.Key, Value: l.Value, Headers: headers})
		return nil
	}, opts...)
	if err != nil || dryRun || len(recs) == 0 {
		return res, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return res, fmt.Errorf("creating kafka producer: %w", err)
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
