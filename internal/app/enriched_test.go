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

// TestSampleEnrichedIsTheAsOfJoin runs the sample through the whole
// process and reads the enriched topic read_committed from the start,
// keeping the last value per key: every valid user event is there once
// the organization partitions go idle, each with the organization version
// in force at its received_at. The expected answers are computed here, in
// Go, from the raw logs' rows (the source coordinates and fields), apart
// from the SQL that produced them.
func TestSampleEnrichedIsTheAsOfJoin(t *testing.T) {
	t.Parallel()
	r := setup(t)
	produceAll(t, r.broker, "user_events", sample.UserEvents, "received_at")
	produceAll(t, r.broker, "org_events", sample.OrgEvents, "created_at")
	r.waitRecords(t, map[records]float64{
		{"user_events", "valid"}: float64(len(sample.UserEvents) - sample.InvalidUserEvents),
		{"org_events", "valid"}:  float64(len(sample.OrgEvents) - sample.InvalidOrgEvents),
	})
	want := asOfOracle(t, r.schema)
	if len(want) != len(sample.UserEvents)-sample.InvalidUserEvents {
		t.Fatalf("the raw log holds %d user events, want %d", len(want), len(sample.UserEvents)-sample.InvalidUserEvents)
	}
	got := map[string]string{}
	readTopicUntil(t, r.broker, "user_events_enriched", "the enriched topic, against the as-of join (-want +topic)", func(rec *kgo.Record) {
		var v struct {
			ID           string     `json:"id"`
			Tier         *string    `json:"organization_tier"`
			OrgValidFrom *time.Time `json:"org_valid_from"`
		}
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			t.Errorf("%s: %v", rec.Key, err)
			return
		}
		src := map[string]string{}
		for _, h := range rec.Headers {
			src[h.Key] = string(h.Value)
		}
		if key := src[changelog.HeaderSourceTopic] + "/" + src[changelog.HeaderSourcePartition] + "/" + src[changelog.HeaderSourceOffset]; key != string(rec.Key) {
			t.Errorf("record %s carries the source %s in its headers", rec.Key, key)
		}
		got[string(rec.Key)] = answerOf(v.ID, v.Tier, v.OrgValidFrom)
	}, func() string { return cmp.Diff(want, got) })
}

func answerOf(id string, tier *string, from *time.Time) string {
	if from == nil {
		return id + " <none>"
	}
	t := "<null tier>"
	if tier != nil {
		t = *tier
	}
	return fmt.Sprintf("%s %s@%s", id, t, from.UTC().Format(time.RFC3339Nano))
}

// asOfOracle computes every raw user event's as-of answer from the raw
// logs: the organization event of its organization with the greatest
// (created_at, partition, offset) at or before its received_at.
func asOfOracle(t *testing.T, schema string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn := testenv.Conn(t)
	type version struct {
		name string
		tier *string
		at   time.Time
		part int32
		off  int64
	}
	var versions []version
	rows, err := conn.Query(ctx, `SELECT organization_name, organization_tier, created_at, partition, "offset" FROM `+schema+`.org_events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v version
		if err := rows.Scan(&v.name, &v.tier, &v.at, &v.part, &v.off); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	rows, err = conn.Query(ctx, `SELECT topic, partition, "offset", id, organization_name, received_at FROM `+schema+`.user_events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var topic, id string
		var part int32
		var off int64
		var name *string
		var at time.Time
		if err := rows.Scan(&topic, &part, &off, &id, &name, &at); err != nil {
			t.Fatal(err)
		}
		var best *version
		for i := range versions {
			v := &versions[i]
			if name == nil || v.name != *name || v.at.After(at) {
				continue
			}
			if best == nil || v.at.After(best.at) || (v.at.Equal(best.at) && (v.part > best.part || (v.part == best.part && v.off > best.off))) {
				best = v
			}
		}
		if best == nil {
			out[changelog.EnrichedKey(topic, part, off)] = answerOf(id, nil, nil)
		} else {
			out[changelog.EnrichedKey(topic, part, off)] = answerOf(id, best.tier, &best.at)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
