package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func setup(t testing.TB) *store.Store { return testenv.Store(t) }

func ptr(s string) *string { return &s }

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

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
