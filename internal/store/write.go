package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
)

// Step is work a caller adds to every batch transaction (an outbox, window
// state): WriteBatch and WriteLog run the steps on the batch's transaction,
// in the order they were added, after the raw-log COPY (and, in WriteBatch,
// the state upserts) and before the fenced offset advance. Their writes
// commit with the offsets or not at all: a fenced batch rolls them back too.
//
// The consumer uses WriteLog, after the batch's state committed through
// WriteState, and the state of later batches may have committed too: a
// step that reads users or organizations sees state at least as new as its
// batch, possibly newer.
//
// A step that returns an error rolls back the whole batch, and WriteBatch
// returns that error wrapped, so that Classify sorts it: return a
// PostgreSQL or transport error unchanged (wrapped with %w) and the caller
// retries as it would any other. A step must not commit or roll back tx,
// keep tx or b after it returns, modify b, or touch kafka_offsets (the
// advance must stay the only statement that locks those rows; see
// WriteBatch). It may run more than once for the same records, since the
// caller retries a batch that failed, and it may run on several writers'
// transactions at once.
type Step func(ctx context.Context, tx pgx.Tx, b *Batch) error

// WithSteps returns a Store that shares s's pool and configuration and runs
// s's steps and then steps in each WriteBatch and WriteLog. s itself is
// unchanged.
// Closing either Store closes the shared pool: close the one Open returned,
// once every user of both has returned.
func (s *Store) WithSteps(steps ...Step) *Store {
	c := *s
	c.steps = append(append([]Step(nil), s.steps...), steps...)
	return &c
}

// WriteBatch writes b in one transaction: AppendRawTx appends the raw logs,
// UpsertStateTx upserts the newest event per key into users and
// organizations, the steps added with WithSteps run, and AdvanceOffsetsTx
// advances the stored offsets (fenced on their generation and old values).
// Either all of it commits or none of it does.
//
// The offset advance comes last so that the transaction locks the offset
// rows, which a successor's claim must update, only in its last statement.
// A process frozen while it streams a COPY keeps its session active, and no
// PostgreSQL timeout ends that; holding no offset row then, it cannot stall
// the claim. Frozen after a statement, its session is idle in transaction
// and PostgreSQL ends it after the idle-in-transaction timeout.
//
// If another writer has claimed a partition since this one did, or moved its
// offset, WriteBatch rolls back and returns a *FencedError. Other errors can
// be sorted with Classify; the caller decides whether to retry.
func (s *Store) WriteBatch(ctx context.Context, b *Batch) error {
	var stats outputStats
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := AppendRawTx(ctx, tx, b); err != nil {
			return err
		}
		if err := s.upsertStateTx(ctx, tx, b); err != nil {
			return err
		}
		var err error
		stats, err = s.stepsAndAdvanceTx(ctx, tx, b)
		if err != nil {
			return err
		}
		return s.tickTx(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("writing batch: %w", err)
	}
	s.countOutputs(stats)
	return nil
}

// tickTx is NumberCommitTx, if the store writes to the outbox.
func (s *Store) tickTx(ctx context.Context, tx pgx.Tx) error {
	if !s.cfg.Changelog && !s.cfg.Enriched && !s.cfg.Activity {
		return nil
	}
	return NumberCommitTx(ctx, tx)
}

// NumberCommitTx takes tx's outbox commit number (changelog_clock.sql) if
// tx wrote outbox rows, and wakes the relay; it does nothing otherwise. It
// must be tx's last statement: the clock's lock is held until tx ends, and
// serializes the commits of every transaction that wrote to the outbox.
func NumberCommitTx(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, sqlChangelogTick); err != nil {
		return fmt.Errorf("numbering the outbox commit: %w", err)
	}
	return nil
}

// countOutputs adds a committed transaction's stats to the store's.
func (s *Store) countOutputs(st outputStats) {
	if s.enriched != nil {
		s.enriched.tooLate.Add(st.enriched.TooLate)
		s.enriched.corrections.Add(st.enriched.Corrections)
	}
	if s.activity != nil {
		s.activity.tooLate.Add(st.activity.TooLate)
		s.activity.corrections.Add(st.activity.Corrections)
	}
}

// WriteState upserts b's newest event per key into users and organizations
// (UpsertStateTx) in one transaction of its own, and ignores b.Offsets.
//
// State alone is idempotent and independent of order: a row only ever moves
// to an event that is strictly newer under the precedence rule, so applying
// an event again, late, or from a member that has since lost its partition
// changes nothing that one clean run would not have. That is what lets the
// consumer commit state apart from, and before, the raw logs and offsets
// (WriteLog), split by key so that no two state writers ever wait for each
// other's row locks. Errors are as WriteBatch's (never a *FencedError).
func (s *Store) WriteState(ctx context.Context, b *Batch) error {
	if len(b.Users)+len(b.Orgs) == 0 {
		return nil
	}
	if s.cfg.Changelog {
		return s.writeStateChangelog(ctx, b)
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return UpsertStateTx(ctx, tx, b) }); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

// WriteLog appends b's records to the raw logs (AppendRawTx), runs the steps
// added with WithSteps, and advances the stored offsets (AdvanceOffsetsTx),
// in one transaction: WriteBatch without the state upserts, for a caller
// that has already committed b's state with WriteState. The raw logs are
// not idempotent, so they commit exactly once with the fenced advance; a
// fenced WriteLog rolls back and returns a *FencedError.
func (s *Store) WriteLog(ctx context.Context, b *Batch) error {
	var stats outputStats
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := AppendRawTx(ctx, tx, b); err != nil {
			return err
		}
		var err error
		if stats, err = s.stepsAndAdvanceTx(ctx, tx, b); err != nil {
			return err
		}
		if !s.cfg.Enriched && !s.cfg.Activity {
			return nil
		}
		return s.tickTx(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("writing log: %w", err)
	}
	s.countOutputs(stats)
	return nil
}

// stepsAndAdvanceTx runs the output steps (EnrichTx for an Enriched store,
// ActivityTx for an Activity store), the steps, then the fenced advance of b's offsets, in tx: the
// end of every batch transaction.
func (s *Store) stepsAndAdvanceTx(ctx context.Context, tx pgx.Tx, b *Batch) (outputStats, error) {
	var stats outputStats
	var err error
	if s.cfg.Enriched {
		if stats.enriched, err = EnrichTx(ctx, tx, b, s.enrichOptions()); err != nil {
			return outputStats{}, err
		}
	}
	if s.cfg.Activity {
		if stats.activity, err = ActivityTx(ctx, tx, b, s.activityOptions()); err != nil {
			return outputStats{}, err
		}
	}
	for i, step := range s.steps {
		if err := step(ctx, tx, b); err != nil {
			return outputStats{}, fmt.Errorf("batch step %d: %w", i+1, err)
		}
	}
	return stats, AdvanceOffsetsTx(ctx, tx, b.Offsets)
}

// outputStats is what the output steps of one transaction counted.
type outputStats struct {
	enriched EnrichStats
	activity ActivityStats
}

// upsertStateTx is UpsertStateTx, or for a store with a changelog its two
// halves without the commit number, which WriteBatch takes last.
func (s *Store) upsertStateTx(ctx context.Context, tx pgx.Tx, b *Batch) error {
	if !s.cfg.Changelog {
		return UpsertStateTx(ctx, tx, b)
	}
	if err := upsertOrgsChangelog(ctx, tx, b, false); err != nil {
		return err
	}
	return upsertUsersChangelog(ctx, tx, b, false)
}

// AppendRawTx copies every record of b, as it arrived, into the raw logs
// user_events and org_events, and b's organization events into
// org_versions (the as-of join's versions), in tx.
func AppendRawTx(ctx context.Context, tx pgx.Tx, b *Batch) error {
	if len(b.Users) > 0 {
		if err := copyBinary(ctx, tx, "user_events", CopyUserEvents, len(b.Users), encodeUserEvents(b.UserTopic, b.Users)); err != nil {
			return fmt.Errorf("copying user_events: %w", err)
		}
	}
	if len(b.Orgs) > 0 {
		if err := copyBinary(ctx, tx, "org_events", CopyOrgEvents, len(b.Orgs), encodeOrgEvents(b.OrgTopic, b.Orgs)); err != nil {
			return fmt.Errorf("copying org_events: %w", err)
		}
		if err := insertVersionsTx(ctx, tx, b); err != nil {
			return err
		}
	}
	return nil
}

// UpsertStateTx collapses b to the newest event per key (event.LatestUsers,
// event.LatestOrgs), stages those and upserts them into users and
// organizations in tx, where each replaces the stored row only if it is
// newer by the SQL rule of upsert_users.sql and upsert_orgs.sql. tx must
// be on a connection of a Store's pool, which creates the session's
// staging tables when it connects.
func UpsertStateTx(ctx context.Context, tx pgx.Tx, b *Batch) error {
	var upserts []string
	if len(b.Users) > 0 {
		users := event.LatestUsers(b.Users)
		if err := copyBinary(ctx, tx, "stage_users", CopyStageUsers, len(users), encodeStageUsers(users)); err != nil {
			return fmt.Errorf("staging users: %w", err)
		}
		upserts = append(upserts, sqlUpsertUsers)
	}
	if len(b.Orgs) > 0 {
		orgs := event.LatestOrgs(b.Orgs)
		if err := copyBinary(ctx, tx, "stage_orgs", CopyStageOrgs, len(orgs), encodeStageOrgs(orgs)); err != nil {
			return fmt.Errorf("staging organizations: %w", err)
		}
		upserts = append(upserts, sqlUpsertOrgs)
	}
	if len(upserts) == 0 {
		return nil
	}
	// Both upserts in one round trip, through the simple protocol (a
	// statement with no parameters, in the order staged).
	if _, err := tx.Conn().PgConn().Exec(ctx, strings.Join(upserts, ";\n")).ReadAll(); err != nil {
		return fmt.Errorf("upserting users and organizations: %w", err)
	}
	return nil
}
