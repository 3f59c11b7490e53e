package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/sample"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// TestSampleChangelogIsTheView runs the sample through the whole process
// and reads the changelog topic read_committed from the start, keeping the
// last value per key: that is exactly the user_profiles view, tombstones
// included (a deleted user has no key left).
func TestSampleChangelogIsTheView(t *testing.T) {
	t.Parallel()
	r := setup(t)
	produceAll(t, r.broker, "user_events", sample.UserEvents, "received_at")
	produceAll(t, r.broker, "org_events", sample.OrgEvents, "created_at")
	r.waitRecords(t, map[records]float64{
		{"user_events", "valid"}: float64(len(sample.UserEvents) - sample.InvalidUserEvents),
		{"org_events", "valid"}:  float64(len(sample.OrgEvents) - sample.InvalidOrgEvents),
	})
	want := profilesView(t, r.schema)
	if len(want) < 10 {
		t.Fatalf("the view holds %d users: the test proves little", len(want))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.broker), kgo.ConsumeTopics("user_profiles"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for diff := cmp.Diff(want, got); diff != ""; diff = cmp.Diff(want, got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the changelog never matched the view (-view +changelog):\n%s", diff)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Value == nil {
				delete(got, string(rec.Key))
			} else {
				got[string(rec.Key)] = string(rec.Value)
			}
		})
	}
}

// profilesView reads user_profiles as the changelog encodes it.
func profilesView(t *testing.T, schema string) map[string]string {
	t.Helper()
	rows, err := testenv.Conn(t).Query(context.Background(), "SELECT id, username, user_email, user_type, organization_name, organization_tier, received_at FROM "+schema+".user_profiles")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var p store.Profile
		if err := rows.Scan(&p.ID, &p.Username, &p.UserEmail, &p.UserType, &p.OrganizationName, &p.OrganizationTier, &p.ReceivedAt); err != nil {
			t.Fatal(err)
		}
		p.ReceivedAt = p.ReceivedAt.UTC()
		b, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		out[p.ID] = string(b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
