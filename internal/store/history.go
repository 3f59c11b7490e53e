package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event statuses in a user's history (user_history.sql).
const (
	// StatusCurrent is the event the users row holds now: the winner.
	StatusCurrent = "current"
	// StatusApplied is an event that was newer, in event-time order, than
	// every event of the user ingested before it (or in its transaction),
	// so it replaced the state when it was written, and has since been
	// replaced by a newer one.
	StatusApplied = "applied"
	// StatusSuperseded is an event that lost when it was written: a late,
	// older event (or an older one in the same batch), which never changed
	// the state.
	StatusSuperseded = "superseded"
)

// HistoryKey is an event's place in event-time order: received_at, then
// type precedence (Deleted 2 > Updated 1 > Created 0), partition, offset,
// topic. It is what a history page resumes after.
type HistoryKey struct {
	ReceivedAt time.Time
	Precedence int32
	Partition  int32
	Offset     int64
	Topic      string
}

// HistoryEvent is one raw event of a user, with its status and source
// coordinates.
type HistoryEvent struct {
	Key            HistoryKey
	EventType      string
	Username       *string
	UserEmail      *string
	UserType       *string
	Organization   *string
	KafkaTimestamp time.Time
	IngestedAt     time.Time
	Status         string // StatusCurrent, StatusApplied or StatusSuperseded
}

// UserHistory returns up to limit raw events of user id that come after
// after (nil: from the first) in event-time order. Only what the raw log
// still holds is there: retention (RawLogRetention) drops old days, and an
// event's status is computed from the events still held.
func (s *Store) UserHistory(ctx context.Context, id string, after *HistoryKey, limit int) ([]HistoryEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	var at *time.Time
	var k HistoryKey
	if after != nil {
		k = *after
		at = &k.ReceivedAt
	}
	rows, err := s.read.Query(ctx, sqlUserHistory, id, at, k.Precedence, k.Partition, k.Offset, k.Topic, limit)
	if err != nil {
		return nil, fmt.Errorf("querying user history: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (HistoryEvent, error) {
		var e HistoryEvent
		var applied, current bool
		err := row.Scan(&e.Key.Topic, &e.Key.Partition, &e.Key.Offset, &e.EventType, &e.Username, &e.UserEmail,
			&e.UserType, &e.Organization, &e.Key.ReceivedAt, &e.KafkaTimestamp, &e.IngestedAt,
			&e.Key.Precedence, &applied, &current)
		e.Key.ReceivedAt, e.KafkaTimestamp, e.IngestedAt = e.Key.ReceivedAt.UTC(), e.KafkaTimestamp.UTC(), e.IngestedAt.UTC()
		switch {
		case current:
			e.Status = StatusCurrent
		case applied:
			e.Status = StatusApplied
		default:
			e.Status = StatusSuperseded
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading user history: %w", err)
	}
	return out, nil
}
