package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/sample"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// activityWindow is a window as the activity topic's value and the state
// both give it.
type activityWindow struct {
	Created     int64 `json:"user_created"`
	Updated     int64 `json:"user_updated"`
	Deleted     int64 `json:"user_deleted"`
	ActiveUsers int64 `json:"active_users"`
	Final       bool  `json:"final"`
}

// TestSampleActivityTopicIsTheWindowState runs the sample through the
// whole process: once the user partitions are idle, the watermark has
// passed the sample's windows, and the activity topic, read
// read_committed and kept last per key, holds every emitted window of the
// state with its counts.
func TestSampleActivityTopicIsTheWindowState(t *testing.T) {
	t.Parallel()
	r := setup(t)
	produceAll(t, r.broker, "user_events", sample.UserEvents, "received_at")
	produceAll(t, r.broker, "org_events", sample.OrgEvents, "created_at")
	r.waitRecords(t, map[records]float64{
		{"user_events", "valid"}: float64(len(sample.UserEvents) - sample.InvalidUserEvents),
		{"org_events", "valid"}:  float64(len(sample.OrgEvents) - sample.InvalidOrgEvents),
	})
	conn := testenv.Conn(t)
	state := func() map[string]activityWindow {
		rows, err := conn.Query(context.Background(), `SELECT organization_name, window_start, created, updated, deleted, active_users, final
			FROM `+r.schema+`.org_activity WHERE emitted`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]activityWindow{}
		for rows.Next() {
			var org string
			var start time.Time
			var w activityWindow
			if err := rows.Scan(&org, &start, &w.Created, &w.Updated, &w.Deleted, &w.ActiveUsers, &w.Final); err != nil {
				t.Fatal(err)
			}
			out[changelog.ActivityKey(org, start)] = w
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.broker), kgo.ConsumeTopics("org_activity"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]activityWindow{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := state()
	for diff := cmp.Diff(want, got); diff != "" || len(want) < 5; diff = cmp.Diff(want, got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the activity topic never matched the emitted windows of the state (%d windows) (-state +topic):\n%s", len(want), diff)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			var w activityWindow
			if err := json.Unmarshal(rec.Value, &w); err != nil {
				t.Errorf("%s: %v", rec.Key, err)
				return
			}
			got[string(rec.Key)] = w
		})
		want = state()
	}
}
