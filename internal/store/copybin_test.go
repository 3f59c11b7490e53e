package store_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// TestBinaryCopyMatchesCopyFrom: the raw logs written by WriteBatch's own
// binary COPY encoding hold exactly what pgx.CopyFrom, with its type map,
// stores for the same events: NULLs, empty and non-ASCII text, the extreme
// timestamps, negative-epoch times and large offsets included.
func TestBinaryCopyMatchesCopyFrom(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2021, 5, 1, 10, 0, 0, 123456000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	}
	texts := []*string{nil, ptr(""), ptr("Ripley"), ptr("Ελένη ✓ 😀"), ptr("tab\tnew\nline\\back"), ptr(strings.Repeat("long ", 60))}
	pick := func() *string { return texts[r.IntN(len(texts))] }
	b := &store.Batch{UserTopic: "user_events", OrgTopic: "org_events"}
	for i := range 200 {
		id := "u" + strconv.Itoa(i)
		if s := pick(); s != nil && i%3 == 0 {
			id = *s + id
		}
		b.Users = append(b.Users, event.User{
			ID: id, Type: event.UserEventType(i % 3), Username: pick(), Email: pick(), UserType: pick(), OrganizationName: pick(),
			ReceivedAt: times[r.IntN(len(times))], LogTime: time.UnixMilli(r.Int64N(4e12) - 1e12).UTC(),
			Pos: event.Position{Partition: int32(r.IntN(1 << 20)), Offset: r.Int64N(1 << 62)},
		})
		b.Orgs = append(b.Orgs, event.Org{
			Key: pick(), Name: "o" + strconv.Itoa(i), Tier: pick(), CreatedAt: times[r.IntN(len(times))],
			LogTime: time.UnixMilli(r.Int64N(4e12) - 1e12).UTC(), Pos: event.Position{Partition: int32(i % 7), Offset: int64(i) << 40},
		})
	}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	conn := testenv.Conn(t)
	s := st.Schema()
	for _, q := range []string{
		"CREATE TABLE " + s + ".ref_users (LIKE " + s + ".user_events INCLUDING DEFAULTS)",
		"CREATE TABLE " + s + ".ref_orgs (LIKE " + s + ".org_events INCLUDING DEFAULTS)",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{s, "ref_users"},
		[]string{"topic", "partition", "offset", "id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "kafka_timestamp"},
		pgx.CopyFromSlice(len(b.Users), func(i int) ([]any, error) {
			u := &b.Users[i]
			return []any{b.UserTopic, u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.LogTime}, nil
		})); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{s, "ref_orgs"},
		[]string{"topic", "partition", "offset", "organization_key", "organization_name", "organization_tier", "created_at", "kafka_timestamp"},
		pgx.CopyFromSlice(len(b.Orgs), func(i int) ([]any, error) {
			o := &b.Orgs[i]
			return []any{b.OrgTopic, o.Pos.Partition, o.Pos.Offset, o.Key, o.Name, o.Tier, o.CreatedAt, o.LogTime}, nil
		})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ table, ref, cols string }{
		{"user_events", "ref_users", "topic, partition, \"offset\", id, event_type, username, user_email, user_type, organization_name, received_at, kafka_timestamp"},
		{"org_events", "ref_orgs", "topic, partition, \"offset\", organization_key, organization_name, organization_tier, created_at, kafka_timestamp"},
	} {
		var n, diff int
		q := "SELECT (SELECT count(*) FROM " + s + "." + c.table + "), (SELECT count(*) FROM ((SELECT " + c.cols + " FROM " + s + "." + c.table +
			" EXCEPT ALL SELECT " + c.cols + " FROM " + s + "." + c.ref + ") UNION ALL (SELECT " + c.cols + " FROM " + s + "." + c.ref +
			" EXCEPT ALL SELECT " + c.cols + " FROM " + s + "." + c.table + ")) d)"
		if err := conn.QueryRow(ctx, q).Scan(&n, &diff); err != nil {
			t.Fatal(err)
		}
		if n != 200 || diff != 0 {
			t.Errorf("%s: %d rows, %d differing from pgx.CopyFrom's; want 200 and 0", c.table, n, diff)
		}
	}
}
