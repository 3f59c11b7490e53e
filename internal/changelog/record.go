package changelog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/store"
)

// Record headers.
const (
	// HeaderPosition is the outbox position of the record,
	// "commit/chunk/index": the relay resumes after the chunk of the
	// highest one in the topic.
	HeaderPosition = "streamjoin.position"
	// HeaderCommittedAt is when the state transaction that changed the
	// profile committed (RFC 3339), for latency.
	HeaderCommittedAt = "streamjoin.committed-at"
)

// Headers of the enriched topic's records, besides the position and
// committed-at: the source event's coordinates, as on dead letters, and
// the correction mark.
const (
	HeaderSourceTopic     = dlq.HeaderSourceTopic
	HeaderSourcePartition = dlq.HeaderSourcePartition
	HeaderSourceOffset    = dlq.HeaderSourceOffset
	// HeaderCorrection is "true" on a re-emitted answer that a late
	// organization version changed, and on a re-emitted window that a late
	// event changed.
	HeaderCorrection = "streamjoin.correction"
)

// record is row's record: a profile's (profileRecord) or an enriched
// event's (enrichedRecord), for its output topic. It is nil for a row of
// an output that is off (the configuration changed while rows of it were
// in the outbox): those are dropped, with a warning once.
func (r *Relay) record(row *store.OutboxRow) (*kgo.Record, error) {
	topic := r.cfg.topicOf(row)
	build := profileRecord
	switch {
	case row.Event != nil:
		build = enrichedRecord
	case row.Window != nil:
		build = activityRecord
	}
	if topic == "" {
		r.dropOnce.Do(func() {
			r.log.Warn("the outbox holds rows of an output that is off; they are dropped", "commit", row.Pos.Commit, "enriched", row.Event != nil, "activity", row.Window != nil)
		})
		return nil, nil
	}
	rec, err := build(row)
	if err != nil {
		return nil, err
	}
	rec.Topic = topic
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: HeaderPosition, Value: []byte(fmt.Sprintf("%d/%d/%d", row.Pos.Commit, row.Pos.Seq, row.Pos.Index))},
		kgo.RecordHeader{Key: HeaderCommittedAt, Value: row.CommittedAt.UTC().AppendFormat(nil, time.RFC3339Nano)})
	return rec, nil
}

// topicOf is the output topic of row's kind ("" if that output is off).
func (c Config) topicOf(row *store.OutboxRow) string {
	switch {
	case row.Event != nil:
		return c.EnrichedTopic
	case row.Window != nil:
		return c.ActivityTopic
	}
	return c.Topic
}

// profileRecord is row's changelog record: the user id as key, the profile
// as the API shows it as value, or no value (a tombstone) for a deleted
// user.
func profileRecord(row *store.OutboxRow) (*kgo.Record, error) {
	rec := &kgo.Record{Key: []byte(row.Profile.ID)}
	if !row.Deleted {
		v, err := json.Marshal(&row.Profile)
		if err != nil {
			return nil, fmt.Errorf("encoding the profile of user %q: %w", row.Profile.ID, err)
		}
		rec.Value = v
	}
	return rec, nil
}

// EnrichedKey is the enriched topic's key of the user event at
// topic/partition/offset.
func EnrichedKey(topic string, partition int32, offset int64) string {
	return topic + "/" + strconv.FormatInt(int64(partition), 10) + "/" + strconv.FormatInt(offset, 10)
}

// enrichedRecord is row's enriched record: keyed by the source event's
// coordinates (EnrichedKey), the event with its organization version as
// value, the coordinates again in headers, and HeaderCorrection on a
// correction.
func enrichedRecord(row *store.OutboxRow) (*kgo.Record, error) {
	e := row.Event
	v, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding the enriched event %s/%d/%d: %w", e.Topic, e.Partition, e.Offset, err)
	}
	rec := &kgo.Record{
		Key:   []byte(EnrichedKey(e.Topic, e.Partition, e.Offset)),
		Value: v,
		Headers: []kgo.RecordHeader{
			{Key: HeaderSourceTopic, Value: []byte(e.Topic)},
			{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(e.Partition), 10)},
			{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, e.Offset, 10)},
		},
	}
	if e.Correction {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderCorrection, Value: []byte("true")})
	}
	return rec, nil
}

// ActivityKey is the activity topic's key of organization's window that
// starts at start.
func ActivityKey(organization string, start time.Time) string {
	return organization + "/" + start.UTC().Format(time.RFC3339)
}

// activityRecord is row's activity record: keyed by ActivityKey, the
// window's counts and final flag as value, HeaderCorrection on a
// correction.
func activityRecord(row *store.OutboxRow) (*kgo.Record, error) {
	w := row.Window
	v, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding the activity window %s: %w", ActivityKey(w.OrganizationName, w.Start), err)
	}
	rec := &kgo.Record{Key: []byte(ActivityKey(w.OrganizationName, w.Start)), Value: v}
	if w.Correction {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderCorrection, Value: []byte("true")})
	}
	return rec, nil
}

// PositionOf reads a changelog record's HeaderPosition.
func PositionOf(r *kgo.Record) (store.OutboxPosition, bool) {
	for _, h := range r.Headers {
		if h.Key != HeaderPosition {
			continue
		}
		parts := strings.Split(string(h.Value), "/")
		if len(parts) != 3 {
			return store.OutboxPosition{}, false
		}
		commit, err1 := strconv.ParseInt(parts[0], 10, 64)
		seq, err2 := strconv.ParseInt(parts[1], 10, 64)
		index, err3 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || err3 != nil {
			return store.OutboxPosition{}, false
		}
		return store.OutboxPosition{Commit: commit, Seq: seq, Index: index}, true
	}
	return store.OutboxPosition{}, false
}

// CommittedAt reads a changelog record's HeaderCommittedAt.
func CommittedAt(r *kgo.Record) (time.Time, bool) {
	for _, h := range r.Headers {
		if h.Key == HeaderCommittedAt {
			t, err := time.Parse(time.RFC3339Nano, string(h.Value))
			return t, err == nil
		}
	}
	return time.Time{}, false
}
