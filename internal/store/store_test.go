package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func setup(t testing.TB) *store.Store { return testenv.Store(t) }

func ptr(s string) *string { return &s }

var t0 = time.Date(2020, 12, 8, 20, 3, 16, 759617000, time.UTC)

func user(id string, typ event.UserEventType, name, org string, at time.Time, part int32, off int64) event.User {
	u := event.User{ID: id, Type: typ, ReceivedAt: at, Pos: event.Position{Partition: part, Offset: off}, LogTime: at}
	if name != "" {
		u.Username = ptr(name)
	}
	if org != "" {
		u.OrganizationName = ptr(org)
	}
	u.UserType = ptr("Admin")
	return u
}

func org(name, tier string, at time.Time, part int32, off int64) event.Org {
	return event.Org{Name: name, Tier: ptr(tier), CreatedAt: at, Pos: event.Position{Partition: part, Offset: off}, LogTime: at}
}

// adv builds the offset advance for records at the given partition/offsets,
// given what the writer believes is stored, under the first claim's
// generation.
func adv(topic string, part int32, from *int64, to int64) store.OffsetAdvance {
	return store.OffsetAdvance{Topic: topic, Partition: part, Generation: 1, From: from, To: to}
}

func i64(v int64) *int64 { return &v }

func claim(t *testing.T, st *store.Store, tps ...store.TopicPartition) map[store.TopicPartition]store.Claim {
	t.Helper()
	m, err := st.ClaimOffsets(context.Background(), tps)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func names(t *testing.T, st *store.Store, name string) []store.Profile {
	t.Helper()
	ps, err := st.UsersByName(context.Background(), name, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	st := setup(t)
	n, err := st.Migrate(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("second Migrate applied %d, err %v; want 0, nil", n, err)
	}
}

func TestWriteBatchEventTimeOrdering(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	tp := store.TopicPartition{Topic: "u", Partition: 0}
	claim(t, st, tp, store.TopicPartition{Topic: "u", Partition: 1})

	// Batch 1: a newer update for alice, and bob's delete before his create.
	b1 := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users: []event.User{
			user("a", event.UserUpdated, "alice", "Acme", t0.Add(time.Hour), 0, 0),
			user("b", event.UserDeleted, "", "", t0.Add(time.Hour), 0, 1),
		},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 2)},
	}
	if err := st.WriteBatch(ctx, b1); err != nil {
		t.Fatal(err)
	}
	// Batch 2: older events for both arrive late on another partition. They
	// must not overwrite alice nor resurrect bob.
	b2 := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users: []event.User{
			user("a", event.UserCreated, "alice-old", "Old", t0, 1, 0),
			user("b", event.UserCreated, "bob", "Acme", t0, 1, 1),
		},
		Offsets: []store.OffsetAdvance{adv("u", 1, nil, 2)},
	}
	if err := st.WriteBatch(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if got := names(t, st, "alice-old"); len(got) != 0 {
		t.Errorf("older event overwrote newer state: %+v", got)
	}
	if got := names(t, st, "bob"); len(got) != 0 {
		t.Errorf("older create resurrected a deleted user: %+v", got)
	}
	got := names(t, st, "alice")
	if len(got) != 1 || *got[0].OrganizationName != "Acme" || got[0].OrganizationTier != nil {
		t.Fatalf("alice = %+v; want one row in Acme with no tier yet", got)
	}

	// The organization arrives late: the join resolves on the next read.
	b3 := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Orgs:    []event.Org{org("Acme", "gold", t0, 0, 0), org("Acme", "silver", t0.Add(-time.Hour), 0, 1)},
		Offsets: []store.OffsetAdvance{adv("u", 0, i64(2), 3)},
	}
	if err := st.WriteBatch(ctx, b3); err != nil {
		t.Fatal(err)
	}
	got = names(t, st, "alice")
	if len(got) != 1 || got[0].OrganizationTier == nil || *got[0].OrganizationTier != "gold" {
		t.Fatalf("alice = %+v; want tier gold (the newer org event)", got)
	}

	// A newer create brings bob back.
	b4 := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("b", event.UserCreated, "bob", "Acme", t0.Add(2*time.Hour), 0, 3)},
		Offsets: []store.OffsetAdvance{adv("u", 0, i64(3), 4)},
	}
	if err := st.WriteBatch(ctx, b4); err != nil {
		t.Fatal(err)
	}
	if got := names(t, st, "bob"); len(got) != 1 {
		t.Fatalf("newer create after delete: got %+v, want bob back", got)
	}

	stored := claim(t, st, tp, store.TopicPartition{Topic: "u", Partition: 1})
	want := map[store.TopicPartition]store.Claim{tp: {Next: i64(4), Generation: 2}, {Topic: "u", Partition: 1}: {Next: i64(2), Generation: 2}}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("stored offsets (-want +got):\n%s", diff)
	}
}

func TestWriteBatchTiesAndTombstones(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0}, store.TopicPartition{Topic: "u", Partition: 1})
	// Same time: Deleted beats Updated beats Created, whatever the order or
	// the batch they arrive in.
	for _, b := range []*store.Batch{
		{Users: []event.User{user("x", event.UserUpdated, "xavier", "A", t0, 0, 0)}, Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)}},
		{Users: []event.User{user("x", event.UserCreated, "xavier-created", "A", t0, 1, 5)}, Offsets: []store.OffsetAdvance{adv("u", 1, nil, 6)}},
	} {
		b.UserTopic, b.OrgTopic = "u", "o"
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if got := names(t, st, "xavier"); len(got) != 1 {
		t.Fatalf("updated should beat created at equal time: %+v", got)
	}
	b := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("x", event.UserDeleted, "", "", t0, 0, 1)},
		Offsets: []store.OffsetAdvance{adv("u", 0, i64(1), 2)},
	}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := names(t, st, "xavier"); len(got) != 0 {
		t.Fatalf("deleted should beat updated at equal time: %+v", got)
	}
	// The tombstone keeps the last known fields.
	var username string
	var deleted bool
	conn := testenv.Conn(t)
	if err := conn.QueryRow(ctx, "SELECT username, deleted FROM "+st.Schema()+".users WHERE id = 'x'").Scan(&username, &deleted); err != nil {
		t.Fatal(err)
	}
	if username != "xavier" || !deleted {
		t.Errorf("tombstone = (%q, %v), want (xavier, true)", username, deleted)
	}
}

func TestWriteBatchFencing(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0})
	ok := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserCreated, "alice", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)},
	}
	if err := st.WriteBatch(ctx, ok); err != nil {
		t.Fatal(err)
	}
	// A zombie that still believes nothing was committed must be refused,
	// and nothing of its batch may land.
	zombie := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("z", event.UserCreated, "zombie", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)},
	}
	err := st.WriteBatch(ctx, zombie)
	var fe *store.FencedError
	if !errors.As(err, &fe) || store.Classify(err) != store.Fenced {
		t.Fatalf("zombie batch: err = %v, want a FencedError", err)
	}
	if len(fe.Partitions) != 1 || fe.Partitions[0] != (store.TopicPartition{Topic: "u", Partition: 0}) {
		t.Errorf("fenced partitions = %v", fe.Partitions)
	}
	if got := names(t, st, "zombie"); len(got) != 0 {
		t.Errorf("fenced batch wrote state: %+v", got)
	}
	var n int
	if err := testenv.Conn(t).QueryRow(ctx, "SELECT count(*) FROM "+st.Schema()+".user_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("user_events has %d rows, want 1", n)
	}
}

// TestClaimIsNotBlockedByABatchInProgress: a batch transaction holds the
// offset rows only in its last statement. A member frozen in the middle of
// one (here: its upsert waits on a row lock the test holds; in life, it is
// stopped while streaming a COPY, which no PostgreSQL timeout ends) must not
// stall its successor's claim, and its batch is then fenced.
func TestClaimIsNotBlockedByABatchInProgress(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	tp := store.TopicPartition{Topic: "u", Partition: 0}
	claim(t, st, tp)
	first := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserCreated, "alice", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)}}
	if err := st.WriteBatch(ctx, first); err != nil {
		t.Fatal(err)
	}
	holder := testenv.Conn(t)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1 FROM "+st.Schema()+".users WHERE id = 'a' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	held := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserUpdated, "alice", "B", t0.Add(time.Second), 0, 1)},
		Offsets: []store.OffsetAdvance{adv("u", 0, i64(1), 2)}}
	done := make(chan error, 1)
	go func() { done <- st.WriteBatch(ctx, held) }()
	// Wait until the batch's transaction is blocked in its upsert.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting bool
		if err := testenv.Conn(t).QueryRow(ctx, "SELECT count(*) > 0 FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))", holder.PgConn().PID()).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited on the held row")
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := st.ClaimOffsets(cctx, []store.TopicPartition{tp}); err != nil {
		t.Fatalf("a successor's claim while a batch is mid-transaction: %v; want it through at once", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; store.Classify(err) != store.Fenced {
		t.Errorf("the held batch after the claim: err = %v, want fenced", err)
	}
}

// TestClaimFencesEarlierOwner: once a partition is claimed again, a batch
// under the old generation is refused even though its offsets line up, and
// LostPartitions reports the partition before anything is written.
func TestClaimFencesEarlierOwner(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	p0, p1 := store.TopicPartition{Topic: "u", Partition: 0}, store.TopicPartition{Topic: "u", Partition: 1}
	first := claim(t, st, p0, p1)
	if first[p0].Generation != 1 || first[p0].Next != nil {
		t.Fatalf("first claim = %+v, want generation 1 and no offset", first[p0])
	}
	second := claim(t, st, p0) // a new owner of partition 0
	if second[p0].Generation != 2 {
		t.Fatalf("second claim generation = %d, want 2", second[p0].Generation)
	}
	old := []store.OffsetAdvance{adv("u", 0, nil, 1), adv("u", 1, nil, 1)}
	lost, err := st.LostPartitions(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 1 || lost[0] != p0 {
		t.Errorf("LostPartitions = %v, want [u/0]", lost)
	}
	err = st.WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("z", event.UserCreated, "zombie", "A", t0, 0, 0)},
		Offsets: old[:1]})
	if store.Classify(err) != store.Fenced {
		t.Fatalf("batch under a stale generation: err = %v, want fenced", err)
	}
	if got := names(t, st, "zombie"); len(got) != 0 {
		t.Errorf("fenced batch wrote state: %+v", got)
	}
	cur := adv("u", 0, nil, 1)
	cur.Generation = second[p0].Generation
	if err := st.WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("a", event.UserCreated, "alice", "A", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{cur}}); err != nil {
		t.Fatalf("batch under the current generation: %v", err)
	}
	if again := claim(t, st, p0); again[p0].Next == nil || *again[p0].Next != 1 {
		t.Errorf("claim after commit = %+v, want next offset 1", again[p0])
	}
}

func TestUsersByNameIsLiteral(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0})
	var us []event.User
	for i, n := range []string{"100%", "1000", "a_b", "axb", "O'Brien", "Big Boss", "Zoë", "Snake", "Snake"} {
		us = append(us, user(string(rune('a'+i)), event.UserCreated, n, "A", t0, 0, int64(i)))
	}
	b := &store.Batch{UserTopic: "u", OrgTopic: "o", Users: us, Offsets: []store.OffsetAdvance{adv("u", 0, nil, int64(len(us)))}}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"100%": 1, "10%": 0, "a_b": 1, "a%": 0, "O'Brien": 1, "Big Boss": 1, "Zoë": 1, "Snake": 2, "snake": 0, "": 0} {
		if got := names(t, st, name); len(got) != want {
			t.Errorf("UsersByName(%q) = %d rows, want %d", name, len(got), want)
		}
	}
}

// TestUsersByNamesMatchesUsersByName checks the coalesced read against the
// single-name read, name by name: literal matching, the per-name limit and
// order, deleted users, and the organization join.
func TestUsersByNamesMatchesUsersByName(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0}, store.TopicPartition{Topic: "o", Partition: 0})
	var us []event.User
	for i, n := range []string{"Snake", "Snake", "Snake", "a_b", "axb", "100%", "Gone", "Otacon"} {
		us = append(us, user(fmt.Sprintf("id-%02d", 10-i), event.UserCreated, n, "A", t0, 0, int64(i)))
	}
	us = append(us, user("id-04", event.UserDeleted, "", "", t0.Add(time.Second), 0, int64(len(us))))
	b := &store.Batch{UserTopic: "u", OrgTopic: "o", Users: us, Orgs: []event.Org{org("A", "gold", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, int64(len(us))), adv("o", 0, nil, 1)}}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	query := []string{"Snake", "a_b", "a%", "100%", "Gone", "Otacon", "nobody", ""}
	for _, limit := range []int{1, 2, 1000} {
		got, err := st.UsersByNames(ctx, query, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range query {
			want, err := st.UsersByName(ctx, name, limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got[name], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("limit %d, name %q: UsersByNames differs from UsersByName (-want +got):\n%s", limit, name, diff)
			}
		}
		if len(got["Snake"]) != min(limit, 3) {
			t.Errorf("limit %d: %d Snakes, want %d", limit, len(got["Snake"]), min(limit, 3))
		}
	}
	got, err := st.UsersByNames(ctx, []string{"Otacon"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got["Otacon"]) != 1 || deref(got["Otacon"][0].OrganizationTier) != "gold" {
		t.Errorf("Otacon = %+v, want one user joined to tier gold", got["Otacon"])
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestConcurrentWritersDoNotDeadlock runs two writers, each owning its own
// partition, whose batches touch the same users in opposite orders. Sorted
// upserts mean neither ever sees a deadlock (40P01), and the result is the
// newest event per user.
func TestConcurrentWritersDoNotDeadlock(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0}, store.TopicPartition{Topic: "u", Partition: 1})
	const batches, perBatch = 30, 200
	errc := make(chan error, 2)
	for part := int32(0); part < 2; part++ {
		go func() {
			var next *int64
			for b := 0; b < batches; b++ {
				us := make([]event.User, perBatch)
				for i := range us {
					id := i
					if part == 1 {
						id = perBatch - 1 - i // the opposite order
					}
					off := int64(b*perBatch + i)
					us[i] = user(fmt.Sprintf("u%03d", id), event.UserUpdated, fmt.Sprintf("p%d-b%d", part, b), "A", t0.Add(time.Duration(b)*time.Second), part, off)
				}
				to := int64((b + 1) * perBatch)
				err := st.WriteBatch(ctx, &store.Batch{UserTopic: "u", OrgTopic: "o", Users: us,
					Offsets: []store.OffsetAdvance{{Topic: "u", Partition: part, Generation: 1, From: next, To: to}}})
				if err != nil {
					errc <- fmt.Errorf("writer %d batch %d: %w (class %v)", part, b, err, store.Classify(err))
					return
				}
				next = &to
			}
			errc <- nil
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// Both writers' last batch has the same time; partition 1 wins the tie.
	if got := names(t, st, fmt.Sprintf("p1-b%d", batches-1)); len(got) != perBatch {
		t.Errorf("%d users hold the newest event, want %d", len(got), perBatch)
	}
}

func TestBatchSplit(t *testing.T) {
	t.Parallel()
	b := &store.Batch{UserTopic: "u", OrgTopic: "o"}
	for p := int32(0); p < 6; p++ {
		b.Users = append(b.Users, user(fmt.Sprint(p), event.UserCreated, "n", "A", t0, p, 0))
		b.Offsets = append(b.Offsets, adv("u", p, nil, 1))
	}
	b.Orgs = append(b.Orgs, org("acme", "gold", t0, 4, 0))
	b.Offsets = append(b.Offsets, adv("o", 4, nil, 1))
	subs := b.Split(4)
	if len(subs) != 4 {
		t.Fatalf("split into %d, want 4", len(subs))
	}
	seen := map[int32]bool{}
	for _, s := range subs {
		mod := s.Offsets[0].Partition % 4
		for _, u := range s.Users {
			seen[u.Pos.Partition] = true
			if u.Pos.Partition%4 != mod {
				t.Errorf("user of partition %d in the batch of partitions ≡ %d (mod 4)", u.Pos.Partition, mod)
			}
		}
		for _, a := range s.Offsets {
			if a.Partition%4 != mod {
				t.Errorf("offset of partition %d in the batch of partitions ≡ %d (mod 4)", a.Partition, mod)
			}
		}
	}
	if len(seen) != 6 || len(subs[0].Orgs) != 1 || len(subs[0].Offsets) != 3 {
		t.Errorf("split lost or misplaced records: partitions %v, first batch %+v", seen, subs[0])
	}
	if one := b.Split(1); len(one) != 1 || one[0] != b {
		t.Error("Split(1) must return the batch itself")
	}
}
