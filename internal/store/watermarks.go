package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	sqlEnsurePartitions  = query("ensure_partitions")
	sqlReadWatermarks    = query("watermarks_read")
	sqlAdvanceWatermarks = query("watermarks_advance")
	sqlMarkIdle          = query("mark_idle")
)

// Watermark is a source topic's event-time progress.
type Watermark struct {
	Topic string
	// Watermark is the stored watermark: every event of the topic with an
	// earlier event time has arrived, within the declared out-of-orderness.
	// Zero: none yet (a partition that is not idle has no event).
	Watermark time.Time
	// MaxEventTime is the greatest event time committed from the topic.
	MaxEventTime time.Time
	// Idle: every partition of the topic is idle.
	Idle bool
}

// AdvanceWatermarks moves each topic's stored watermark forward from its
// partitions' checkpointed event times (see watermarks_advance.sql) and
// returns every topic's. maxOutOfOrderness is how late an event may be,
// in event time, behind the greatest one of its partition. Any number of
// processes may call it at once: the watermark only moves forward.
func (s *Store) AdvanceWatermarks(ctx context.Context, maxOutOfOrderness time.Duration) ([]Watermark, error) {
	rows, err := s.pool.Query(ctx, sqlAdvanceWatermarks, maxOutOfOrderness)
	if err != nil {
		return nil, fmt.Errorf("advancing watermarks: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanWatermark)
	if err != nil {
		return nil, fmt.Errorf("advancing watermarks: %w", err)
	}
	return out, nil
}

// scanWatermark reads (topic, watermark, greatest event time, idle).
func scanWatermark(row pgx.CollectableRow) (Watermark, error) {
	var w Watermark
	var wm, latest *time.Time
	err := row.Scan(&w.Topic, &wm, &latest, &w.Idle)
	if wm != nil {
		w.Watermark = wm.UTC()
	}
	if latest != nil {
		w.MaxEventTime = latest.UTC()
	}
	return w, err
}

// Watermarks returns each topic's stored watermark, without moving it,
// through the read pool, bounded by the query timeout. Topics without a
// watermark yet are absent.
func (s *Store) Watermarks(ctx context.Context) ([]Watermark, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	rows, err := s.read.Query(ctx, sqlReadWatermarks)
	if err != nil {
		return nil, fmt.Errorf("reading watermarks: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanWatermark)
	if err != nil {
		return nil, fmt.Errorf("reading watermarks: %w", err)
	}
	return out, nil
}

// EnsurePartitions records every partition of the source topics in
// kafka_offsets, unclaimed, where it is missing: a partition that no
// member has claimed yet then holds its topic's watermark back, as one
// with no event does, instead of being left out of the least. The
// consumer calls it at start with every partition it finds.
func (s *Store) EnsurePartitions(ctx context.Context, tps []TopicPartition) error {
	if len(tps) == 0 {
		return nil
	}
	topics := make([]string, len(tps))
	parts := make([]int32, len(tps))
	for i, tp := range tps {
		topics[i], parts[i] = tp.Topic, tp.Partition
	}
	if _, err := s.pool.Exec(ctx, sqlEnsurePartitions, topics, parts); err != nil {
		return fmt.Errorf("recording the source partitions: %w", err)
	}
	return nil
}

// IdleMark says a partition has been caught up, with no new records, since
// Since. Next is the stored offset its owner saw (nil: none).
type IdleMark struct {
	Topic      string
	Partition  int32
	Generation int64
	Next       *int64
	Since      time.Time
}

// MarkIdle marks partitions idle, so that they stop holding their topic's
// watermark back, until the next offset advance of each. A mark whose
// generation or offset is no longer the stored one changes nothing. It
// returns the partitions it marked.
func (s *Store) MarkIdle(ctx context.Context, marks []IdleMark) ([]TopicPartition, error) {
	if len(marks) == 0 {
		return nil, nil
	}
	topics := make([]string, len(marks))
	parts := make([]int32, len(marks))
	gens := make([]int64, len(marks))
	nexts := make([]*int64, len(marks))
	since := make([]time.Time, len(marks))
	for i, m := range marks {
		topics[i], parts[i], gens[i], nexts[i], since[i] = m.Topic, m.Partition, m.Generation, m.Next, m.Since
	}
	rows, err := s.pool.Query(ctx, sqlMarkIdle, topics, parts, gens, nexts, since)
	if err != nil {
		return nil, fmt.Errorf("marking partitions idle: %w", err)
	}
	marked, err := pgx.CollectRows(rows, pgx.RowToStructByPos[TopicPartition])
	if err != nil {
		return nil, fmt.Errorf("marking partitions idle: %w", err)
	}
	return marked, nil
}
