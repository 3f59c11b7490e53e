package app_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	got := map[string]activityWindow{}
	readTopicUntil(t, r.broker, "org_activity", "the activity topic, against the emitted windows of the state (-state +topic)", func(rec *kgo.Record) {
		var w activityWindow
		if err := json.Unmarshal(rec.Value, &w); err != nil {
			t.Errorf("%s: %v", rec.Key, err)
			return
		}
		got[string(rec.Key)] = w
	}, func() string {
		want := state()
		if len(want) < 5 {
			return fmt.Sprintf("the state emitted %d windows so far", len(want))
		}
		return cmp.Diff(want, got)
	})
}
