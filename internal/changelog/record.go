package changelog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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

// record is row's changelog record: the user id as key, the profile as the
// API shows it as value, or no value (a tombstone) for a deleted user.
func record(row *store.OutboxRow) (*kgo.Record, error) {
	rec := &kgo.Record{
		Key: []byte(row.Profile.ID),
		Headers: []kgo.RecordHeader{
			{Key: HeaderPosition, Value: []byte(fmt.Sprintf("%d/%d/%d", row.Pos.Commit, row.Pos.Seq, row.Pos.Index))},
			{Key: HeaderCommittedAt, Value: row.CommittedAt.UTC().AppendFormat(nil, time.RFC3339Nano)},
		},
	}
	if !row.Deleted {
		v, err := json.Marshal(&row.Profile)
		if err != nil {
			return nil, fmt.Errorf("encoding the profile of user %q: %w", row.Profile.ID, err)
		}
		rec.Value = v
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
