package app_test

import (
	"testing"

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
	got := map[string]string{}
	readTopicUntil(t, r.broker, "user_profiles", "the changelog, against the view (-view +changelog)", func(rec *kgo.Record) {
		if rec.Value == nil {
			delete(got, string(rec.Key))
		} else {
			got[string(rec.Key)] = string(rec.Value)
		}
	}, func() string { return cmp.Diff(want, got) })
}
