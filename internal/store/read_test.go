package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
)

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
