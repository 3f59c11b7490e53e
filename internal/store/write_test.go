package store_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var t0 = time.Date(2020, 12, 8, 20, 3, 16, 759617000, time.UTC)

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

// SplitByKey puts every event in exactly one of n shards, each key always
// in the same shard, whatever else is in the batch, and carries no offsets.
func TestBatchSplitByKey(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3, 7} {
		b := &store.Batch{UserTopic: "u", OrgTopic: "o", Offsets: []store.OffsetAdvance{adv("u", 0, nil, 9)}}
		for i := range 300 {
			b.Users = append(b.Users, user(fmt.Sprint("user-", i%97), event.UserUpdated, "n", "A", t0, int32(i%6), int64(i)))
			b.Orgs = append(b.Orgs, org(fmt.Sprint("org-", i%13), "gold", t0, int32(i%6), int64(i)))
		}
		subs := b.SplitByKey(n)
		if len(subs) != n {
			t.Fatalf("SplitByKey(%d) gave %d shards", n, len(subs))
		}
		shardOf := map[string]int{}
		users, orgs := 0, 0
		for i, s := range subs {
			if len(s.Offsets) != 0 || s.UserTopic != "u" || s.OrgTopic != "o" {
				t.Errorf("n=%d shard %d: offsets %v, topics %q %q; want none and the batch's topics", n, i, s.Offsets, s.UserTopic, s.OrgTopic)
			}
			for _, k := range append(idsOf(s.Users), namesOf(s.Orgs)...) {
				if j, ok := shardOf[k]; ok && j != i {
					t.Errorf("n=%d: key %s in shards %d and %d", n, k, j, i)
				}
				shardOf[k] = i
			}
			users += len(s.Users)
			orgs += len(s.Orgs)
		}
		if users != len(b.Users) || orgs != len(b.Orgs) {
			t.Errorf("n=%d: shards hold %d users and %d orgs, want %d and %d", n, users, orgs, len(b.Users), len(b.Orgs))
		}
		// The same key lands in the same shard in another batch.
		other := (&store.Batch{Users: b.Users[:1], Orgs: b.Orgs[:1]}).SplitByKey(n)
		for i, s := range other {
			for _, k := range append(idsOf(s.Users), namesOf(s.Orgs)...) {
				if shardOf[k] != i {
					t.Errorf("n=%d: key %s in shard %d of one batch and %d of another", n, k, shardOf[k], i)
				}
			}
		}
	}
}

func idsOf(us []event.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, "u:"+u.ID)
	}
	return out
}

func namesOf(os []event.Org) []string {
	var out []string
	for _, o := range os {
		out = append(out, "o:"+o.Name)
	}
	return out
}
