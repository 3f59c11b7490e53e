package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	sqlActivityCount = query("activity_count")
	sqlActivityFire  = query("activity_fire")
)

// Defaults of the windowed activity's settings.
const (
	DefaultWindow          = time.Hour
	DefaultWindowRetention = 30 * 24 * time.Hour
)

// ActivityOptions configures the windowed organization activity's steps.
type ActivityOptions struct {
	// Window is the length of the tumbling event-time windows, aligned on
	// the Unix epoch.
	Window time.Duration
	// AllowedLateness: an event whose window ended this much or less
	// behind the user watermark still counts, as a correction of a window
	// already emitted; a later one does not count.
	AllowedLateness time.Duration
}

// ActivityStats is what one ActivityTx did beyond the ordinary.
type ActivityStats struct {
	// TooLate counts the events whose window was final (too late to count).
	TooLate int64
	// Corrections counts the windows re-emitted because a late event
	// changed them.
	Corrections int64
}

// ActivityTx is the windowed activity's step of a batch transaction, after
// the raw COPY of b (AppendRawTx) and before its offsets advance
// (activity_count.sql): b's user events with an organization are counted
// in their organization's window, and a window already emitted is emitted
// again as a correction. The transaction must end with NumberCommitTx.
//
// It is not idempotent: it must commit exactly once per record, with the
// raw log and the fenced offset advance, as WriteLog and WriteBatch do.
func ActivityTx(ctx context.Context, tx pgx.Tx, b *Batch, opts ActivityOptions) (ActivityStats, error) {
	var st ActivityStats
	n := len(b.Users)
	if n == 0 {
		return st, nil
	}
	ids, types, orgs, at := make([]string, n), make([]string, n), make([]*string, n), make([]time.Time, n)
	for i := range b.Users {
		u := &b.Users[i]
		ids[i], types[i], orgs[i], at[i] = u.ID, u.Type.String(), u.OrganizationName, u.ReceivedAt
	}
	batch := &pgx.Batch{}
	batch.Queue(sqlGenericPlans) // as EnrichTx's
	batch.Queue(sqlActivityCount, b.UserTopic, opts.Window, opts.AllowedLateness, ids, types, orgs, at).
		QueryRow(func(row pgx.Row) error { return row.Scan(&st.TooLate, &st.Corrections) })
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return ActivityStats{}, fmt.Errorf("counting organization activity: %w", err)
	}
	return st, nil
}

// activityCounts accumulates the committed ActivityStats of a Store and
// every Store that shares its pool.
type activityCounts struct {
	tooLate, corrections atomic.Int64
}

// ActivityCounts returns how many user events were too late for their
// window, and how many window corrections were emitted, by the batches
// this Store (and those sharing its pool) committed.
func (s *Store) ActivityCounts() (tooLate, corrections int64) {
	if s.activity == nil {
		return 0, 0
	}
	return s.activity.tooLate.Load(), s.activity.corrections.Load()
}

// FireWindows emits the windows the user watermark of userTopic has passed
// (activity_fire.sql): each once when the watermark passes its end, and
// once more, final, when it passes its end plus the allowed lateness; at
// most limit of them, in one transaction that takes a commit number. It
// also deletes final windows that ended more than the window retention
// before the watermark. It returns how many windows it emitted: a caller
// that gets limit or more back should call it again. Any number of
// processes may call it at once.
func (s *Store) FireWindows(ctx context.Context, userTopic string, limit int) (int, error) {
	n, err := s.emitTx(ctx, "", sqlActivityFire, userTopic, s.cfg.AllowedLateness, limit, s.cfg.WindowRetention)
	if err != nil {
		return 0, fmt.Errorf("firing activity windows: %w", err)
	}
	return n, nil
}

// activityOptions is the store's ActivityOptions.
func (s *Store) activityOptions() ActivityOptions {
	return ActivityOptions{Window: s.cfg.Window, AllowedLateness: s.cfg.AllowedLateness}
}

var sqlActivityRead = query("activity_read")

// Window is an organization's activity in one window, as the state holds
// it now.
type Window struct {
	Start       time.Time `json:"window_start"`
	End         time.Time `json:"window_end"`
	Created     int64     `json:"user_created"`
	Updated     int64     `json:"user_updated"`
	Deleted     int64     `json:"user_deleted"`
	ActiveUsers int64     `json:"active_users"`
	// Final: the user watermark has passed End plus the allowed lateness
	// and the window has been emitted final; it changes no more.
	Final bool `json:"-"`
}

// OrganizationActivity returns up to limit of org's activity windows that
// start in [from, to) and after after (the zero time: from the first), in
// start order, through the read pool, bounded by the query timeout.
func (s *Store) OrganizationActivity(ctx context.Context, org string, from, to, after time.Time, limit int) ([]Window, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	bound := func(t time.Time, inf string) any {
		if t.IsZero() {
			return inf
		}
		return t
	}
	rows, err := s.read.Query(ctx, sqlActivityRead, org, bound(from, "-infinity"), bound(to, "infinity"), bound(after, "-infinity"), limit)
	if err != nil {
		return nil, fmt.Errorf("reading the activity of %q: %w", org, err)
	}
	ws, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Window, error) {
		var w Window
		err := row.Scan(&w.Start, &w.End, &w.Created, &w.Updated, &w.Deleted, &w.ActiveUsers, &w.Final)
		w.Start, w.End = w.Start.UTC(), w.End.UTC()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the activity of %q: %w", org, err)
	}
	return ws, nil
}
