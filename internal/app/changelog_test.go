package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/sample"
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
	want := testenv.ProfilesView(t, testenv.Conn(t), r.schema)
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
