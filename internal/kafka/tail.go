package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"
)

// tailWindow is how many offsets before the last stable offset LastRecords
// reads first; each further step back reads four times as many.
const tailWindow = 64

// LastRecords returns the last committed data record of each of partitions of topic, read read_committed; a partition with none (empty, emptied by retention, or holding only aborted records and control markers) is absent from the map. It blocks until all are read or ctx ends; its clients are its own and closed on return.
//
// "Last" is as of the partition's last stable offset when it is listed: a
// transaction still open then is not waited for and none of its records is
// returned. With transactions, the last offsets of a partition are control
// markers, and aborted records may come before them, so it reads a window
// before the last stable offset with its own fetch requests (which say where
// the next read starts past markers and aborted batches), and further back
// only when that window holds no committed data record. Errors Kafka says
// are retriable (a leader moving, say) are retried, with the leaders looked
// up again, until ctx ends.
func (c *Connector) LastRecords(ctx context.Context, role string, topic string, partitions []int32) (map[int32]*kgo.Record, error) {
	// A short-lived reader: no KIP-714 metrics, whose final push makes
	// Close wait up to a second (against kfake, every time).
	cl, err := c.NewClient(role, kgo.DisableClientMetrics())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	t := &tailReader{cl: cl, adm: kadm.NewClient(cl), topic: topic}
	out := make(map[int32]*kgo.Record, len(partitions))
	found := make([]*kgo.Record, len(partitions))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range partitions {
		g.Go(func() error {
			r, err := t.last(gctx, p)
			found[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("reading the last records of %s: %w", topic, err)
	}
	for i, p := range partitions {
		if found[i] != nil {
			out[p] = found[i]
		}
	}
	return out, nil
}

// tailReader reads the tails of one topic's partitions; safe for concurrent
// use (kgo and kadm clients are).
type tailReader struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string

	mu   sync.Mutex
	meta *kadm.TopicDetail // the topic's leaders; nil: look them up
}

// topicMeta returns the topic's metadata, looked up once until forget.
func (t *tailReader) topicMeta(ctx context.Context) (kadm.TopicDetail, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.meta != nil {
		return *t.meta, nil
	}
	meta, err := t.adm.Metadata(ctx, t.topic)
	if err != nil {
		return kadm.TopicDetail{}, fmt.Errorf("metadata: %w", err)
	}
	td, ok := meta.Topics[t.topic]
	if !ok {
		return kadm.TopicDetail{}, fmt.Errorf("metadata of %s: %w", t.topic, kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return kadm.TopicDetail{}, fmt.Errorf("metadata of %s: %w", t.topic, td.Err)
	}
	t.meta = &td
	return td, nil
}

// forget drops the metadata after an error: a leader may have moved.
func (t *tailReader) forget() {
	t.mu.Lock()
	t.meta = nil
	t.mu.Unlock()
}

// bounds returns partition p's log start offset and last stable offset.
func (t *tailReader) bounds(ctx context.Context, p int32) (start, stable int64, err error) {
	starts, err := t.adm.ListStartOffsets(ctx, t.topic)
	if err != nil {
		return 0, 0, fmt.Errorf("listing start offsets: %w", err)
	}
	ends, err := t.adm.ListCommittedOffsets(ctx, t.topic)
	if err != nil {
		return 0, 0, fmt.Errorf("listing last stable offsets: %w", err)
	}
	s, ok := starts.Lookup(t.topic, p)
	e, ok2 := ends.Lookup(t.topic, p)
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("partition %s/%d does not exist", t.topic, p)
	}
	if s.Err != nil {
		return 0, 0, fmt.Errorf("listing start offset of %s/%d: %w", t.topic, p, s.Err)
	}
	if e.Err != nil {
		return 0, 0, fmt.Errorf("listing last stable offset of %s/%d: %w", t.topic, p, e.Err)
	}
	return s.Offset, e.Offset, nil
}

// last returns partition p's last committed data record below its last
// stable offset, or nil if it has none.
func (t *tailReader) last(ctx context.Context, p int32) (*kgo.Record, error) {
	var start, stable int64
	err := t.retrying(ctx, func() error {
		var err error
		start, stable, err = t.bounds(ctx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	hi := stable
	for window := int64(tailWindow); hi > start; window *= 4 {
		from := max(start, hi-window)
		r, err := t.lastIn(ctx, p, from, hi)
		if errors.Is(err, kerr.OffsetOutOfRange) {
			// Retention moved the start past from meanwhile: the
			// partition is shorter than it was, start over.
			return t.last(ctx, p)
		}
		if err != nil || r != nil {
			return r, err
		}
		hi = from
	}
	return nil, nil
}

// lastIn returns the last committed data record of partition p in
// [from, to), or nil.
func (t *tailReader) lastIn(ctx context.Context, p int32, from, to int64) (*kgo.Record, error) {
	var last *kgo.Record
	for at := from; at < to; {
		var fp kgo.FetchPartition
		var next int64
		err := t.retrying(ctx, func() error {
			var err error
			fp, next, err = t.fetch(ctx, p, at)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range fp.Records {
			if r.Offset >= at && r.Offset < to && !r.Attrs.IsControl() {
				last = r
			}
		}
		if next <= at {
			// Nothing past at below the last stable offset: the end
			// moved back (a truncated log) or nothing is readable.
			if fp.LastStableOffset <= at {
				break
			}
			if err := pause(ctx); err != nil {
				return nil, err
			}
			continue
		}
		at = next
	}
	return last, nil
}

// fetch sends one read_committed fetch for partition p at offset to its
// leader and returns what it holds and where the next fetch starts.
func (t *tailReader) fetch(ctx context.Context, p int32, offset int64) (kgo.FetchPartition, int64, error) {
	td, err := t.topicMeta(ctx)
	if err != nil {
		return kgo.FetchPartition{}, 0, err
	}
	pd, ok := td.Partitions[p]
	if !ok {
		return kgo.FetchPartition{}, 0, fmt.Errorf("partition %s/%d: %w", t.topic, p, kerr.UnknownTopicOrPartition)
	}
	if pd.Err != nil {
		return kgo.FetchPartition{}, 0, fmt.Errorf("metadata of %s/%d: %w", t.topic, p, pd.Err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 4 << 20
	req.IsolationLevel = 1
	req.SessionEpoch = -1 // no fetch session
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = t.topic, td.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.FetchOffset = offset
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := t.cl.Broker(int(pd.Leader)).Request(ctx, req)
	if err != nil {
		return kgo.FetchPartition{}, 0, fmt.Errorf("fetching %s/%d at %d: %w", t.topic, p, offset, err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return kgo.FetchPartition{}, 0, fmt.Errorf("fetching %s/%d at %d: %w", t.topic, p, offset, err)
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		if rt.Topic != t.topic && rt.TopicID != td.ID {
			continue
		}
		for j := range rt.Partitions {
			if rt.Partitions[j].Partition != p {
				continue
			}
			fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset:         offset,
				IsolationLevel: kgo.ReadCommitted(),
				Topic:          t.topic,
				Partition:      p,
			}, &rt.Partitions[j], kgo.DefaultDecompressor(), nil)
			if fp.Err != nil {
				return kgo.FetchPartition{}, 0, fmt.Errorf("fetching %s/%d at %d: %w", t.topic, p, offset, fp.Err)
			}
			return fp, next, nil
		}
	}
	return kgo.FetchPartition{}, 0, fmt.Errorf("fetching %s/%d at %d: no answer for the partition: %w", t.topic, p, offset, kerr.UnknownTopicOrPartition)
}

// retrying runs fn until it succeeds, fails with an error Kafka does not
// call retriable, or ctx ends.
func (t *tailReader) retrying(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || errors.Is(err, kerr.OffsetOutOfRange) || !(kerr.IsRetriable(err) || kgo.IsRetryableBrokerErr(err)) {
			return err
		}
		t.forget()
		if perr := pause(ctx); perr != nil {
			return fmt.Errorf("%w (last error: %w)", perr, err)
		}
	}
}

// pause waits a short while, or until ctx ends.
func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}
