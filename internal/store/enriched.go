package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
)

// enrichedLockClass is the first key of the advisory lock that orders the
// as-of join's steps: emitting user events (EnrichTx without organization
// versions, ReleaseEnriched) holds it shared; a batch with organization
// versions, which may correct emitted answers, holds it exclusively. So
// whichever of an emission and a correction commits second sees the
// other: an answer is never emitted without a version that committed
// before it, nor left uncorrected by one that committed after. The second
// key is the schema's hash, as for the changelog's lock.
const enrichedLockClass = 0x534b // "SK"

var (
	sqlEnrichedEmit    = query("enriched_emit")
	sqlEnrichedCorrect = query("enriched_correct")
	sqlEnrichedRelease = query("enriched_release")
	sqlVersionsInsert  = query("org_versions_insert")
	sqlGenericPlans    = "SET LOCAL plan_cache_mode = force_generic_plan"
	sqlEnrichedShared  = fmt.Sprintf("SELECT pg_advisory_xact_lock_shared(%d, hashtext(current_schema()))", enrichedLockClass)
	sqlEnrichedExcl    = fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, hashtext(current_schema()))", enrichedLockClass)
)

// DefaultAllowedLateness is Config.AllowedLateness's default.
const DefaultAllowedLateness = time.Hour

// EnrichOptions configures the as-of join's steps.
type EnrichOptions struct {
	// Eager emits every user event at once, against the organization
	// versions known, and relies on corrections; otherwise an event waits
	// until the organization watermark reaches its time.
	Eager bool
	// AllowedLateness: an organization version whose created_at is this
	// far or less behind the organization watermark corrects the answers
	// it changes; an older one corrects nothing.
	AllowedLateness time.Duration
}

// EnrichStats is what one EnrichTx did beyond the ordinary.
type EnrichStats struct {
	// TooLate counts the batch's organization versions older than the
	// allowed lateness: stored, correcting nothing.
	TooLate int64
	// Corrections counts the answers re-emitted as corrections.
	Corrections int64
}

// EnrichTx is the as-of join's step of a batch transaction, after the raw
// COPY of b (AppendRawTx) and before its offsets advance; the transaction
// must end with the commit number (changelog_clock.sql) if it wrote outbox
// rows. In one round trip it takes the enriched lock (exclusively if b has
// organization versions), emits or holds back b's user events
// (enriched_emit.sql) and, if b has organization versions, re-emits the
// answers they change (enriched_correct.sql).
//
// It is not idempotent: it must commit exactly once per record, with the
// raw log and the fenced offset advance, as WriteLog and WriteBatch do.
func EnrichTx(ctx context.Context, tx pgx.Tx, b *Batch, opts EnrichOptions) (EnrichStats, error) {
	var st EnrichStats
	if len(b.Users)+len(b.Orgs) == 0 {
		return st, nil
	}
	batch := &pgx.Batch{}
	// Generic plans: the statements' parameters are arrays whose values
	// do not change the best plan, and planning them anew for every batch
	// cost a millisecond of each small one (BenchmarkWriteLogOutputs/…/200).
	batch.Queue(sqlGenericPlans)
	if len(b.Orgs) > 0 {
		batch.Queue(sqlEnrichedExcl)
	} else {
		batch.Queue(sqlEnrichedShared)
	}
	n := len(b.Users)
	parts, offsets := make([]int32, n), make([]int64, n)
	if n > 0 {
		ids, types := make([]string, n), make([]string, n)
		names, emails, utypes, orgs := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		at := make([]time.Time, n)
		for i := range b.Users {
			u := &b.Users[i]
			parts[i], offsets[i], ids[i], types[i] = u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String()
			names[i], emails[i], utypes[i], orgs[i], at[i] = u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt
		}
		batch.Queue(sqlEnrichedEmit, b.UserTopic, b.OrgTopic, opts.Eager, parts, offsets, ids, types, names, emails, utypes, orgs, at)
	}
	if len(b.Orgs) > 0 {
		m := len(b.Orgs)
		oparts, ooffsets, onames, created := make([]int32, m), make([]int64, m), make([]string, m), make([]time.Time, m)
		for i := range b.Orgs {
			o := &b.Orgs[i]
			oparts[i], ooffsets[i], onames[i], created[i] = o.Pos.Partition, o.Pos.Offset, o.Name, o.CreatedAt
		}
		sp, lo, hi := offsetSpans(b.Users)
		batch.Queue(sqlEnrichedCorrect, b.UserTopic, b.OrgTopic, opts.AllowedLateness, oparts, ooffsets, onames, created, sp, lo, hi).
			QueryRow(func(row pgx.Row) error { return row.Scan(&st.TooLate, &st.Corrections) })
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return EnrichStats{}, fmt.Errorf("enriching user events: %w", err)
	}
	return st, nil
}

// insertVersionsTx records b's organization events in org_versions.
func insertVersionsTx(ctx context.Context, tx pgx.Tx, b *Batch) error {
	m := len(b.Orgs)
	parts, offs, names, keys, tiers, created := make([]int32, m), make([]int64, m), make([]string, m), make([]*string, m), make([]*string, m), make([]time.Time, m)
	for i := range b.Orgs {
		o := &b.Orgs[i]
		parts[i], offs[i], names[i], keys[i], tiers[i], created[i] = o.Pos.Partition, o.Pos.Offset, o.Name, o.Key, o.Tier, o.CreatedAt
	}
	if _, err := tx.Exec(ctx, sqlVersionsInsert, b.OrgTopic, parts, offs, names, keys, tiers, created); err != nil {
		return fmt.Errorf("recording organization versions: %w", err)
	}
	return nil
}

// enrichedIndex indexes the raw user log by organization and event time:
// a correction's candidate events (enriched_correct.sql). Only a store
// with the as-of join on creates it, because every raw user event pays an
// entry in it.
const enrichedIndex = "CREATE INDEX IF NOT EXISTS user_events_org_received_idx ON user_events (organization_name, received_at)"

// ensureEnrichedIndex creates enrichedIndex on conn, in the store's schema,
// if it is missing. On a raw log that is already large this builds the
// index on every partition at once, holding writes to the raw log back
// until it is built (docs/operations.md, "Upgrades"). A store with the
// as-of join turned off later keeps it: drop it by hand to save its cost.
func (s *Store) ensureEnrichedIndex(ctx context.Context, conn *pgx.Conn) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+quoteIdent(s.cfg.Schema)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, enrichedIndex)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating the as-of join's index of the raw user log: %w", err)
	}
	return nil
}

// offsetSpans returns, for each partition of users, its least and
// greatest offset. A batch's records of a partition are a span of offsets
// that no other batch's records share (the fenced offset advance covers
// it), so a raw row of the user topic in a span is one of users.
func offsetSpans(users []event.User) (parts []int32, lo, hi []int64) {
	idx := map[int32]int{}
	for i := range users {
		p, o := users[i].Pos.Partition, users[i].Pos.Offset
		j, ok := idx[p]
		if !ok {
			idx[p] = len(parts)
			parts, lo, hi = append(parts, p), append(lo, o), append(hi, o)
			continue
		}
		lo[j], hi[j] = min(lo[j], o), max(hi[j], o)
	}
	return parts, lo, hi
}

// enrichCounts accumulates the committed EnrichStats of a Store and every
// Store that shares its pool (WithSteps).
type enrichCounts struct {
	tooLate, corrections atomic.Int64
}

// EnrichedCounts returns how many organization versions were too late to
// correct anything, and how many corrections were emitted, by the batches
// this Store (and those sharing its pool) committed.
func (s *Store) EnrichedCounts() (tooLate, corrections int64) {
	if s.enriched == nil {
		return 0, 0
	}
	return s.enriched.tooLate.Load(), s.enriched.corrections.Load()
}

// ReleaseEnriched emits the pending user events that the organization
// watermark (or an idle organization topic) now lets go, at most limit of
// them, in one transaction of their own that takes a commit number, and
// returns how many it emitted: a caller that gets limit back should call
// it again. Any number of processes may call it at once.
func (s *Store) ReleaseEnriched(ctx context.Context, orgTopic string, limit int) (int, error) {
	n, err := s.emitTx(ctx, sqlEnrichedShared, sqlEnrichedRelease, orgTopic, s.cfg.EnrichedEager, limit)
	if err != nil {
		return 0, fmt.Errorf("releasing pending enriched events: %w", err)
	}
	return n, nil
}

// emitTx runs, in one transaction of its own, lock (if not "") and then
// query, which writes outbox chunks and returns each one's row count, then
// takes a commit number if it wrote any; it returns the rows written. It
// is the watermark loop's work (ReleaseEnriched, FireWindows).
func (s *Store) emitTx(ctx context.Context, lock, query string, args ...any) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n = 0
		if lock != "" {
			if _, err := tx.Exec(ctx, lock); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		chunks, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		for _, c := range chunks {
			n += c
		}
		if n == 0 {
			return nil
		}
		return NumberCommitTx(ctx, tx)
	})
	return n, err
}

// enrichOptions is the store's EnrichOptions.
func (s *Store) enrichOptions() EnrichOptions {
	return EnrichOptions{Eager: s.cfg.EnrichedEager, AllowedLateness: s.cfg.AllowedLateness}
}
