package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
)

// changelogLockClass is the first key of the advisory lock that orders the
// changelog's user steps (shared) against its tier changes (exclusive); the
// second key is the schema's hash, so that schemas never wait for each
// other.
const changelogLockClass = 0x534a // "SJ"

var (
	sqlChangelogTick = query("changelog_clock")
	// sqlChangelogUsers: the shared lock, then the users upsert whose
	// changed profiles go to the outbox.
	sqlChangelogUsers = fmt.Sprintf("SELECT pg_advisory_xact_lock_shared(%d, hashtext(current_schema()));\n", changelogLockClass) +
		"WITH up AS (\n" + sqlUpsertUsers +
		"\nRETURNING u.id, u.username, u.user_email, u.user_type, u.organization_name, u.received_at, u.deleted, u.profile_changed\n)\n" +
		query("changelog_users")
	// sqlChangelogOrgs: upsert and note tier changes, lock, fan out.
	sqlChangelogOrgs = fmt.Sprintf(query("changelog_orgs"), sqlUpsertOrgs, changelogLockClass)
)

// UpsertStateChangelogTx is UpsertStateTx for a store with a changelog, in
// one transaction: the organizations (upsertOrgsChangelog), the users
// (upsertUsersChangelog), then, if they wrote outbox rows, a commit number
// (changelog_clock.sql). The commit number's lock is held until tx ends,
// and it serializes the commits of every transaction that emits: tx should
// end soon after.
func UpsertStateChangelogTx(ctx context.Context, tx pgx.Tx, b *Batch) error {
	if err := upsertOrgsChangelog(ctx, tx, b, false); err != nil {
		return err
	}
	if err := upsertUsersChangelog(ctx, tx, b, false); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sqlChangelogTick); err != nil {
		return fmt.Errorf("numbering the changelog commit: %w", err)
	}
	return nil
}

// upsertUsersChangelog upserts b's newest event per user, and writes the
// profile of each user whose user_profiles row changed (a tombstone for a
// user that became deleted) to the changelog outbox, in tx, then, if tick,
// takes a commit number: one round trip.
//
// It reads tiers under the shared changelog lock, which a tier change
// (upsertOrgsChangelog) takes exclusively before it fans out: whichever of
// the two commits second sees the other's write.
func upsertUsersChangelog(ctx context.Context, tx pgx.Tx, b *Batch, tick bool) error {
	if len(b.Users) == 0 {
		return nil
	}
	users := event.LatestUsers(b.Users)
	if err := copyBinary(ctx, tx, "stage_users", CopyStageUsers, len(users), encodeStageUsers(users)); err != nil {
		return fmt.Errorf("staging users: %w", err)
	}
	if err := execScript(ctx, tx, sqlChangelogUsers, tick); err != nil {
		return fmt.Errorf("upserting users with changelog: %w", err)
	}
	return nil
}

// upsertOrgsChangelog upserts b's newest event per organization and, for
// each organization whose tier changed (or that arrived with a tier while
// users already named it), writes the profile of every live user of it to
// the outbox, in one statement inside PostgreSQL; then, if tick, takes a
// commit number.
//
// A tier change takes the changelog lock exclusively, so it waits for the
// user steps in flight and holds back new ones until tx ends: the larger
// the fan-out, the longer ingest waits (BENCHMARKS.md measures it).
func upsertOrgsChangelog(ctx context.Context, tx pgx.Tx, b *Batch, tick bool) error {
	if len(b.Orgs) == 0 {
		return nil
	}
	orgs := event.LatestOrgs(b.Orgs)
	if err := copyBinary(ctx, tx, "stage_orgs", CopyStageOrgs, len(orgs), encodeStageOrgs(orgs)); err != nil {
		return fmt.Errorf("staging organizations: %w", err)
	}
	if err := execScript(ctx, tx, sqlChangelogOrgs, tick); err != nil {
		return fmt.Errorf("upserting organizations with changelog: %w", err)
	}
	return nil
}

// execScript runs script, and then the commit-number statement if tick, in
// one round trip through the simple protocol.
func execScript(ctx context.Context, tx pgx.Tx, script string, tick bool) error {
	if tick {
		script += ";\n" + sqlChangelogTick
	}
	_, err := tx.Conn().PgConn().Exec(ctx, script).ReadAll()
	return err
}

// writeStateChangelog is WriteState for a store with a changelog: the
// organizations, then the users, each in a transaction of its own with its
// own commit number, so that a tier change's exclusive lock is never held
// while users are written.
func (s *Store) writeStateChangelog(ctx context.Context, b *Batch) error {
	for _, step := range []struct {
		what string
		n    int
		fn   func(context.Context, pgx.Tx, *Batch, bool) error
	}{{"organizations", len(b.Orgs), upsertOrgsChangelog}, {"users", len(b.Users), upsertUsersChangelog}} {
		if step.n == 0 {
			continue // no empty transaction: two round trips saved per shard
		}
		if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return step.fn(ctx, tx, b, true) }); err != nil {
			return fmt.Errorf("writing state (%s): %w", step.what, err)
		}
	}
	return nil
}
