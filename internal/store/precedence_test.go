package store_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// The precedence of two events for the same key is written twice, on
// purpose: in Go (event.NewerUser/NewerOrg, applied by LatestUsers/
// LatestOrgs within a batch) and in SQL (the WHERE of upsert_users.sql and
// upsert_orgs.sql, applied across batches). These tests hold the two to the
// same answer: each pair is given to the Go rule, and written to PostgreSQL
// as two batches (the first event, then the second), and the row must hold
// the event the Go rule picked. Each pair is tried in both orders.

// A user pair's events carry usernames "first" and "second" so that the row
// says which one it holds even when the two agree on every precedence key.
type userPair struct {
	name string
	a, b event.User
}

type orgPair struct {
	name string
	a, b event.Org
}

func pu(typ event.UserEventType, at time.Time, part int32, off int64) event.User {
	return event.User{Type: typ, ReceivedAt: at, Pos: event.Position{Partition: part, Offset: off}, LogTime: at, UserType: ptr("Admin"), OrganizationName: ptr("A")}
}

func po(at time.Time, part int32, off int64) event.Org {
	return event.Org{CreatedAt: at, Pos: event.Position{Partition: part, Offset: off}, LogTime: at}
}

var (
	us1       = time.Microsecond
	farFuture = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	longAgo   = time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC)
)

func userPairs() []userPair {
	c, u, d := event.UserCreated, event.UserUpdated, event.UserDeleted
	pairs := []userPair{
		{"later time wins", pu(c, t0, 0, 0), pu(c, t0.Add(time.Hour), 0, 1)},
		{"one microsecond later wins", pu(u, t0.Add(us1), 0, 0), pu(u, t0, 0, 1)},
		{"later create beats older delete", pu(d, t0, 0, 5), pu(c, t0.Add(us1), 0, 1)},
		{"later delete beats older create", pu(c, t0, 3, 5), pu(d, t0.Add(time.Second), 0, 0)},
		{"later time beats type", pu(d, t0, 0, 9), pu(c, t0.Add(us1), 0, 0)},
		{"later time beats position", pu(u, t0, math.MaxInt32, math.MaxInt64), pu(u, t0.Add(us1), 0, 0)},
		{"equal time: updated beats created", pu(c, t0, 0, 9), pu(u, t0, 0, 1)},
		{"equal time: deleted beats updated", pu(u, t0, 1, 9), pu(d, t0, 0, 1)},
		{"equal time: deleted beats created", pu(c, t0, 2, 0), pu(d, t0, 0, 0)},
		{"equal time and type: higher partition wins", pu(u, t0, 1, 0), pu(u, t0, 0, 100)},
		{"equal time, type, partition: higher offset wins", pu(u, t0, 0, 7), pu(u, t0, 0, 8)},
		{"equal deletes: higher partition wins", pu(d, t0, 2, 0), pu(d, t0, 1, 1)},
		{"identical keys: first stays", pu(u, t0, 0, 1), pu(u, t0, 0, 1)},
		{"identical deletes: first stays", pu(d, t0, 0, 1), pu(d, t0, 0, 1)},
		{"extreme positions", pu(c, t0, math.MaxInt32, math.MaxInt64), pu(c, t0, math.MaxInt32, math.MaxInt64-1)},
		{"far future vs long ago", pu(c, farFuture, 0, 0), pu(d, longAgo, 9, 9)},
		{"before 1970", pu(u, longAgo.Add(us1), 0, 0), pu(d, longAgo, 0, 1)},
	}
	// A bare delete (only id and time, as the contract allows) against a
	// create at the same time: the delete wins, keeping the create's fields.
	bare := event.User{Type: d, ReceivedAt: t0, Pos: event.Position{Partition: 0, Offset: 1}, LogTime: t0}
	pairs = append(pairs, userPair{"bare delete vs create at the same time", pu(c, t0, 0, 2), bare})

	// Randomized pairs from a fixed seed, over small domains so that ties
	// on every key are common.
	rng := rand.New(rand.NewPCG(2026, 11))
	for i := range 1500 {
		gen := func() event.User {
			return pu(event.UserEventType(rng.IntN(3)), t0.Add(time.Duration(rng.IntN(3))*us1), int32(rng.IntN(3)), int64(rng.IntN(3)))
		}
		pairs = append(pairs, userPair{fmt.Sprintf("random %d", i), gen(), gen()})
	}
	return pairs
}

func orgPairs() []orgPair {
	pairs := []orgPair{
		{"later time wins", po(t0, 9, 9), po(t0.Add(us1), 0, 0)},
		{"equal time: higher partition wins", po(t0, 1, 0), po(t0, 0, 100)},
		{"equal time and partition: higher offset wins", po(t0, 0, 7), po(t0, 0, 8)},
		{"identical keys: first stays", po(t0, 0, 1), po(t0, 0, 1)},
		{"extreme positions", po(t0, math.MaxInt32, math.MaxInt64), po(t0, math.MaxInt32, 0)},
		{"far future vs long ago", po(longAgo, 9, 9), po(farFuture, 0, 0)},
	}
	rng := rand.New(rand.NewPCG(2026, 12))
	for i := range 1500 {
		gen := func() event.Org {
			return po(t0.Add(time.Duration(rng.IntN(3))*us1), int32(rng.IntN(3)), int64(rng.IntN(3)))
		}
		pairs = append(pairs, orgPair{fmt.Sprintf("random %d", i), gen(), gen()})
	}
	return pairs
}

// order names the two ways each pair is written.
var order = [2]string{"ab", "ba"}

func TestUserPrecedenceGoMatchesSQL(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	pairs := userPairs()
	first, second := &store.Batch{UserTopic: "u", OrgTopic: "o"}, &store.Batch{UserTopic: "u", OrgTopic: "o"}
	goWinner := map[string]string{} // id -> "first" or "second"
	events := map[string][2]event.User{}
	for i, p := range pairs {
		for o, ord := range order {
			x, y := p.a, p.b
			if o == 1 {
				x, y = y, x
			}
			id := fmt.Sprintf("%04d-%s", i, ord)
			x.ID, y.ID = id, id
			if x.Type != event.UserDeleted || x.Username != nil || x.UserType != nil {
				x.Username = ptr("first")
			}
			if y.Type != event.UserDeleted || y.Username != nil || y.UserType != nil {
				y.Username = ptr("second")
			}
			first.Users = append(first.Users, x)
			second.Users = append(second.Users, y)
			events[id] = [2]event.User{x, y}
			// The Go rule: collapse the two as one batch would.
			switch w := event.LatestUsers([]event.User{x, y}); {
			case len(w) != 1:
				t.Fatalf("%s: LatestUsers returned %d events for one id", p.name, len(w))
			case sameUser(w[0], x):
				goWinner[id] = "first"
			default:
				goWinner[id] = "second"
			}
		}
	}
	for _, b := range []*store.Batch{first, second} {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := testenv.Conn(t).Query(ctx, "SELECT id, received_at, event_type, source_partition, source_offset, username FROM "+st.Schema()+".users")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID        string
		At        time.Time
		Type      string
		Partition int32
		Offset    int64
		Username  *string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(goWinner) {
		t.Fatalf("users has %d rows, want %d", len(got), len(goWinner))
	}
	for _, r := range got {
		ev := events[r.ID]
		var held []string
		for k, e := range ev {
			if r.At.Equal(e.ReceivedAt) && r.Type == e.Type.String() && r.Partition == e.Pos.Partition && r.Offset == e.Pos.Offset {
				held = append(held, [2]string{"first", "second"}[k])
			}
		}
		if len(held) == 2 { // equal on every key: the username tells
			if r.Username == nil {
				t.Fatalf("%s: ambiguous pair (equal keys, no username)", r.ID)
			}
			held = []string{*r.Username}
		}
		if len(held) != 1 {
			t.Errorf("user %s: row %+v matches neither event %+v", r.ID, r, ev)
			continue
		}
		if held[0] != goWinner[r.ID] {
			i := 0
			fmt.Sscanf(r.ID, "%04d", &i)
			t.Errorf("%s (%s): SQL kept the %s event, Go picks the %s\n  first:  %s\n  second: %s",
				pairs[i].name, r.ID, held[0], goWinner[r.ID], userKey(ev[0]), userKey(ev[1]))
		}
	}
}

func sameUser(a, b event.User) bool {
	return a.ReceivedAt.Equal(b.ReceivedAt) && a.Type == b.Type && a.Pos == b.Pos && a.Username == b.Username
}

func userKey(u event.User) string {
	return fmt.Sprintf("%s %s p%d o%d", u.ReceivedAt.Format(time.RFC3339Nano), u.Type, u.Pos.Partition, u.Pos.Offset)
}

func TestOrgPrecedenceGoMatchesSQL(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	pairs := orgPairs()
	first, second := &store.Batch{UserTopic: "u", OrgTopic: "o"}, &store.Batch{UserTopic: "u", OrgTopic: "o"}
	goWinner := map[string]string{}
	events := map[string][2]event.Org{}
	for i, p := range pairs {
		for o, ord := range order {
			x, y := p.a, p.b
			if o == 1 {
				x, y = y, x
			}
			name := fmt.Sprintf("%04d-%s", i, ord)
			x.Name, y.Name = name, name
			x.Tier, y.Tier = ptr("first"), ptr("second")
			first.Orgs = append(first.Orgs, x)
			second.Orgs = append(second.Orgs, y)
			events[name] = [2]event.Org{x, y}
			w := event.LatestOrgs([]event.Org{x, y})
			if len(w) != 1 {
				t.Fatalf("%s: LatestOrgs returned %d events for one name", p.name, len(w))
			}
			goWinner[name] = *w[0].Tier
		}
	}
	for _, b := range []*store.Batch{first, second} {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := testenv.Conn(t).Query(ctx, "SELECT organization_name, organization_tier FROM "+st.Schema()+".organizations")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name string
		Tier string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(goWinner) {
		t.Fatalf("organizations has %d rows, want %d", len(got), len(goWinner))
	}
	for _, r := range got {
		if r.Tier != goWinner[r.Name] {
			i := 0
			fmt.Sscanf(r.Name, "%04d", &i)
			ev := events[r.Name]
			t.Errorf("%s (%s): SQL kept the %s event, Go picks the %s\n  first:  %s p%d o%d\n  second: %s p%d o%d",
				pairs[i].name, r.Name, r.Tier, goWinner[r.Name],
				ev[0].CreatedAt.Format(time.RFC3339Nano), ev[0].Pos.Partition, ev[0].Pos.Offset,
				ev[1].CreatedAt.Format(time.RFC3339Nano), ev[1].Pos.Partition, ev[1].Pos.Offset)
		}
	}
}
