package ingest

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/store"
)

// lagTracker keeps streamjoin_ingest_consumer_lag_records: for each
// partition this member has claimed, the records between the offset
// committed to PostgreSQL and the partition's end.
//
// The end comes from the fetches the consumer makes anyway (no extra
// broker request): a fetch response carries each partition's high
// watermark and, since the consumer reads read_committed, its last stable
// offset, which is the end used (records past it are in open transactions
// and cannot be read yet). Two consequences:
//
//   - A partition's series appears once a fetch has told its end, and is
//     updated by every poll that carries the partition and by every commit.
//     While the consumer does not poll (PostgreSQL down, the lanes full),
//     the end is the last one seen: the gauge then understates the lag.
//   - In a source written in Kafka transactions, a commit marker takes an
//     offset after the transaction's last record, so a partition caught
//     up with such a topic reads 1, not 0 (as kafka-consumer-groups shows
//     it too).
//
// Safe for concurrent use. The consumer changes it under its own mutex
// (c.mu), in the same critical sections that change what it owns, so that
// a commit cannot bring back a revoked partition's series; total may be
// read from anywhere.
type lagTracker struct {
	gauge *prometheus.GaugeVec

	mu    sync.Mutex
	parts map[store.TopicPartition]*partLag
}

// partLag is what the tracker knows of one claimed partition; -1: not yet.
type partLag struct {
	committed int64 // next offset to consume, as stored in PostgreSQL
	end       int64 // last stable offset (read_committed) from the last fetch
	label     [2]string
}

func newLagTracker(gauge *prometheus.GaugeVec) *lagTracker {
	return &lagTracker{gauge: gauge, parts: map[store.TopicPartition]*partLag{}}
}

// claimed starts tracking tp from its stored offset (nil: nothing stored
// yet; the first fetched record's offset stands in for it).
func (l *lagTracker) claimed(tp store.TopicPartition, next *int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.parts[tp]
	if p == nil {
		p = &partLag{committed: -1, end: -1, label: [2]string{tp.Topic, strconv.Itoa(int(tp.Partition))}}
		l.parts[tp] = p
	}
	if next != nil {
		p.committed = *next
	}
	l.set(p)
}

// fetched records the end fp reports for tp, a partition the member owns.
// Until an offset is committed, fp's first record (or else the log start)
// stands in for it.
func (l *lagTracker) fetched(tp store.TopicPartition, fp *kgo.FetchPartition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.parts[tp]
	if p == nil {
		return
	}
	end := fp.LastStableOffset
	if end < 0 { // a broker too old to report it: no transactions to wait for
		end = fp.HighWatermark
	}
	if end < 0 {
		return
	}
	p.end = end
	if p.committed < 0 {
		switch {
		case len(fp.Records) > 0:
			p.committed = fp.Records[0].Offset
		case fp.LogStartOffset >= 0:
			p.committed = fp.LogStartOffset
		}
	}
	l.set(p)
}

// committed records that tp's offsets up to next are committed. A
// partition not tracked (revoked meanwhile) is left alone.
func (l *lagTracker) committed(tp store.TopicPartition, next int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.parts[tp]; p != nil && next > p.committed {
		p.committed = next
		l.set(p)
	}
}

// forget stops tracking tp and removes its series.
func (l *lagTracker) forget(tp store.TopicPartition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.parts[tp]; p != nil {
		l.gauge.DeleteLabelValues(p.label[0], p.label[1])
		delete(l.parts, tp)
	}
}

// reset forgets every partition (the member has stopped).
func (l *lagTracker) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gauge.Reset()
	clear(l.parts)
}

// total returns the records behind summed over the partitions whose lag is
// known, for the progress line.
func (l *lagTracker) total() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, p := range l.parts {
		if v, ok := p.lag(); ok {
			n += v
		}
	}
	return n
}

func (p *partLag) lag() (int64, bool) {
	if p.end < 0 || p.committed < 0 {
		return 0, false
	}
	return max(p.end-p.committed, 0), true
}

// set publishes p's lag once it is known; l.mu is held.
func (l *lagTracker) set(p *partLag) {
	if v, ok := p.lag(); ok {
		l.gauge.WithLabelValues(p.label[0], p.label[1]).Set(float64(v))
	}
}

// observeEnds passes each owned partition's end, as the poll's fetches
// report it, to the lag tracker. Called from the polling goroutine.
func (c *Consumer) observeEnds(fetches kgo.Fetches) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil {
			return
		}
		tp := store.TopicPartition{Topic: p.Topic, Partition: p.Partition}
		if _, ok := c.owned[tp]; ok {
			c.behind.fetched(tp, &p.FetchPartition)
		}
	})
}
