package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// outbox reads the outbox in relay order (commit number, then seq) and
// empties it, as "id=username/org/tier" or "id=†" for a tombstone.
func outbox(t *testing.T, st *store.Store) []string {
	t.Helper()
	ctx := context.Background()
	s := st.Schema()
	conn := testenv.Conn(t)
	rows, err := conn.Query(ctx, `
		SELECT p.id, p.deleted, coalesce(p.username, '-'), coalesce(p.organization_name, '-'), coalesce(p.organization_tier, '-')
		FROM `+s+`.changelog_commits c
		JOIN `+s+`.changelog_outbox o ON o.xid = c.xid
		CROSS JOIN LATERAL unnest(o.payload) WITH ORDINALITY AS p
		ORDER BY c.n, o.seq, p.ordinality`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var id, name, orgName, tier string
		var deleted bool
		if err := rows.Scan(&id, &deleted, &name, &orgName, &tier); err != nil {
			t.Fatal(err)
		}
		if deleted {
			out = append(out, id+"=†")
		} else {
			out = append(out, fmt.Sprintf("%s=%s/%s/%s", id, name, orgName, tier))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var orphans int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+s+`.changelog_outbox o WHERE NOT EXISTS (SELECT 1 FROM `+s+`.changelog_commits c WHERE c.xid = o.xid)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans > 0 {
		t.Errorf("%d outbox rows have no commit number: the relay would never see them", orphans)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM `+s+`.changelog_outbox; DELETE FROM `+s+`.changelog_commits`); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChangelogEmitsWhatTheViewShows: each state write emits exactly the
// profiles whose user_profiles row it changed, joined to the tier at that
// point, and nothing when nothing visible changed.
func TestChangelogEmitsWhatTheViewShows(t *testing.T) {
	t.Parallel()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	off := int64(0)
	u := func(id string, typ event.UserEventType, name, orgName string, s int) event.User {
		off++
		return user(id, typ, name, orgName, at(s), 0, off)
	}
	o := func(name, tier string, s int) event.Org {
		off++
		return org(name, tier, at(s), 1, off)
	}
	steps := []struct {
		name  string
		users []event.User
		orgs  []event.Org
		want  []string
	}{
		{"a new user, organization unknown: null tier",
			[]event.User{u("a", event.UserCreated, "ann", "Acme", 10)}, nil,
			[]string{"a=ann/Acme/-"}},
		{"a late organization with a tier: its live users again",
			nil, []event.Org{o("Acme", "gold", 5)},
			[]string{"a=ann/Acme/gold"}},
		{"the same user event again: nothing",
			[]event.User{user("a", event.UserCreated, "ann", "Acme", at(10), 0, 1)}, nil,
			nil},
		{"an older user event: nothing",
			[]event.User{u("a", event.UserUpdated, "old", "Acme", 9)}, nil,
			nil},
		{"a newer organization event with the same tier: nothing",
			nil, []event.Org{o("Acme", "gold", 6)},
			nil},
		{"two more users",
			[]event.User{u("b", event.UserCreated, "bob", "Acme", 11), u("c", event.UserCreated, "cy", "Initech", 11)}, nil,
			[]string{"b=bob/Acme/gold", "c=cy/Initech/-"}},
		{"a tier change: every live user of it, once each",
			nil, []event.Org{o("Acme", "silver", 7)},
			[]string{"a=ann/Acme/silver", "b=bob/Acme/silver"}},
		{"a user moves: the new organization's tier",
			[]event.User{u("b", event.UserUpdated, "bob", "Initech", 12)}, []event.Org{o("Initech", "bronze", 8)},
			// The organizations commit first: c gets Initech's tier, then b
			// its move.
			[]string{"c=cy/Initech/bronze", "b=bob/Initech/bronze"}},
		{"the old organization's tier changes: the user who left is not emitted",
			nil, []event.Org{o("Acme", "gold", 9)},
			[]string{"a=ann/Acme/gold"}},
		{"a delete: a tombstone",
			[]event.User{u("a", event.UserDeleted, "", "", 13)}, nil,
			[]string{"a=†"}},
		{"a newer delete of a deleted user: nothing",
			[]event.User{u("a", event.UserDeleted, "", "", 14)}, nil,
			nil},
		{"a tier change skips deleted users",
			nil, []event.Org{o("Acme", "platinum", 10)},
			nil},
		{"a delete that arrives before its user ever existed: nothing",
			[]event.User{u("d", event.UserDeleted, "", "", 15)}, nil,
			nil},
		{"a newer event with the same visible fields (an update tying a create): nothing",
			[]event.User{u("c", event.UserUpdated, "cy", "Initech", 11)}, nil,
			nil},
		{"a user comes back after a delete with a newer create",
			[]event.User{u("a", event.UserCreated, "ann", "Acme", 16)}, nil,
			[]string{"a=ann/Acme/platinum"}},
	}
	for _, write := range []struct {
		name string
		fn   func(*store.Store, *store.Batch) error
	}{
		{"WriteState", func(st *store.Store, b *store.Batch) error { return st.WriteState(context.Background(), b) }},
		{"WriteBatch", func(st *store.Store, b *store.Batch) error {
			return st.WriteBatch(context.Background(), &store.Batch{UserTopic: "u", OrgTopic: "o", Users: b.Users, Orgs: b.Orgs})
		}},
	} {
		t.Run(write.name, func(t *testing.T) {
			st := testenv.ChangelogStore(t)
			for i, s := range steps {
				if err := write.fn(st, &store.Batch{Users: s.users, Orgs: s.orgs}); err != nil {
					t.Fatalf("step %d (%s): %v", i, s.name, err)
				}
				got := outbox(t, st)
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Errorf("step %d (%s): outbox (-want +got):\n%s", i, s.name, diff)
				}
			}
		})
	}
}

// TestChangelogOffWritesNoOutbox: without the changelog the state write
// leaves the outbox empty (and pays nothing for it).
func TestChangelogOffWritesNoOutbox(t *testing.T) {
	t.Parallel()
	st := setup(t)
	if err := st.WriteState(context.Background(), &store.Batch{
		Users: []event.User{user("a", event.UserCreated, "ann", "Acme", t0, 0, 1)},
		Orgs:  []event.Org{org("Acme", "gold", t0, 0, 2)},
	}); err != nil {
		t.Fatal(err)
	}
	if got := outbox(t, st); len(got) != 0 {
		t.Errorf("outbox = %s, want empty", strings.Join(got, ", "))
	}
}

// TestChangelogTierChangeRacesAUserWrite races a tier change with a user
// moving into that organization, in both orders: one transaction is left
// open while the other starts. Whichever commits second must see the
// other's write, so the last profile of the user in the outbox is the one
// user_profiles shows. Without the changelog lock, the user write reads the
// old tier while the fan-out misses the uncommitted user, and the outbox
// ends with the old tier.
func TestChangelogTierChangeRacesAUserWrite(t *testing.T) {
	t.Parallel()
	userMove := &store.Batch{Users: []event.User{user("u", event.UserUpdated, "una", "Acme", t0.Add(2*time.Second), 0, 2)}}
	tierChange := &store.Batch{Orgs: []event.Org{org("Acme", "gold", t0.Add(2*time.Second), 1, 2)}}
	for _, tc := range []struct {
		name          string
		first, second *store.Batch
	}{
		{"tier change open, user write starts", tierChange, userMove},
		{"user write open, tier change starts", userMove, tierChange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := testenv.ChangelogStore(t)
			// u starts in Initech; Acme exists with tier silver.
			if err := st.WriteState(ctx, &store.Batch{
				Users: []event.User{user("u", event.UserCreated, "una", "Initech", t0, 0, 1)},
				Orgs:  []event.Org{org("Acme", "silver", t0, 1, 1), org("Initech", "bronze", t0, 1, 0)},
			}); err != nil {
				t.Fatal(err)
			}
			outbox(t, st)

			writeAcross(t, st, tc.first, tc.second)
			got := outbox(t, st)
			if len(got) == 0 || got[len(got)-1] != "u=una/Acme/gold" {
				t.Errorf("outbox %q: want it to end with u=una/Acme/gold, what user_profiles shows", got)
			}
		})
	}
}

// TestChangelogConcurrentCreatesOfAnOrganization: two writers create the
// same organization at once (the same name in partitions of two members),
// the second with a newer event and no tier. The second waits for the
// first's insert and then replaces it: it must compare with what it
// replaced, not with its snapshot's "no row", so that the users of the
// organization end with no tier in the outbox too, as in the view.
func TestChangelogConcurrentCreatesOfAnOrganization(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.ChangelogStore(t)
	if err := st.WriteState(ctx, &store.Batch{Users: []event.User{user("u", event.UserCreated, "una", "Acme", t0, 0, 1)}}); err != nil {
		t.Fatal(err)
	}
	outbox(t, st)
	noTier := org("Acme", "", t0.Add(time.Second), 1, 2)
	noTier.Tier = nil
	writeAcross(t, st, &store.Batch{Orgs: []event.Org{org("Acme", "gold", t0, 1, 1)}}, &store.Batch{Orgs: []event.Org{noTier}})
	got := outbox(t, st)
	if len(got) == 0 || got[len(got)-1] != "u=una/Acme/-" {
		t.Errorf("outbox %q: want it to end with u=una/Acme/-, what user_profiles shows", got)
	}
}

// writeAcross writes first in a transaction left open (with its commit
// number taken), starts WriteState of second, waits until second waits
// for first or (without the mechanism under test) is done, then commits
// first and waits for second.
func writeAcross(t *testing.T, st *store.Store, first, second *store.Batch) {
	t.Helper()
	ctx := context.Background()
	conn := testenv.Conn(t)
	if _, err := conn.Exec(ctx, "SET search_path = "+st.Schema()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, store.StageTablesSQL); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.UpsertStateChangelogTx(ctx, tx, first); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.WriteState(ctx, second) }()
	secondErr, finished := testenv.WaitBlockedOrDone(t, conn.PgConn().PID(), done)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !finished {
		secondErr = <-done
	}
	if secondErr != nil {
		t.Fatal(secondErr)
	}
}

// TestOutboxPayloadsUseLZ4: the outbox's payload columns are compressed
// with lz4, on the parent, on every partition the migrations created, and
// on one created later (as the maintenance does), so that a chunk writes a
// fifth of the WAL it would uncompressed (migration 0012).
func TestOutboxPayloadsUseLZ4(t *testing.T) {
	t.Parallel()
	st := testenv.ChangelogStore(t)
	conn := testenv.Conn(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE TABLE "+st.Schema()+".changelog_outbox_d20301231 PARTITION OF "+st.Schema()+".changelog_outbox FOR VALUES FROM ('2030-12-31') TO ('2031-01-01')"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT c.relname || '.' || a.attname, a.attcompression::text, a.attstorage::text
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname LIKE 'changelog_outbox%' AND a.attname IN ('payload', 'events', 'windows')`, st.Schema())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var col, compression, storage string
		if err := rows.Scan(&col, &compression, &storage); err != nil {
			t.Fatal(err)
		}
		n++
		if compression != "l" || storage != "x" {
			t.Errorf("%s: compression %q, storage %q; want lz4 (l), extended (x)", col, compression, storage)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Fatalf("%d payload columns found: the check proves little", n)
	}
}
