package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
)

func TestPipelineMatchesOracle(t *testing.T) {
	t.Parallel()
	e := setup(t)
	users, orgs := workload(1, 200, 3000, 20, 300)
	e.start(t, e.config(500))
	produce(t, e.broker, "user_events", users)
	produce(t, e.broker, "org_events", orgs)
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	e.checkState(t, users, orgs)
	e.checkDLQ(t, "user_events", users, true)
	e.checkDLQ(t, "org_events", orgs, true)
}

// TestRestartMidStream stops the consumer part way and starts a new one: the
// end state, the raw logs and the dead letters are those of one clean run.
func TestRestartMidStream(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(6, "user_events", "org_events"))
	users, orgs := workload(2, 150, 3000, 15, 300)
	produce(t, e.broker, "user_events", users)
	produce(t, e.broker, "org_events", orgs)
	conn := e.conn(t)
	total := int64(len(users) + len(orgs))
	committed := func() int64 {
		var n int64
		if err := conn.QueryRow(context.Background(), "SELECT coalesce(sum(next_offset),0)::bigint FROM "+e.schema+".kafka_offsets").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var prev int64
	for round := 0; round < 3; round++ {
		stop := e.start(t, e.config(100))
		// Let it commit some batches, then stop it mid-stream.
		want := int64(round+1) * 600
		for deadline := time.Now().Add(30 * time.Second); committed() < want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d records committed after 30s, want at least %d", round, committed(), want)
			}
		}
		stop()
		n := committed()
		if n <= prev || n >= total {
			t.Fatalf("round %d stopped with %d of %d records committed (%d before): not a stop in the middle of the stream", round, n, total, prev)
		}
		prev = n
	}
	e.start(t, e.config(100))
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	e.checkState(t, users, orgs)
	e.checkDLQ(t, "user_events", users, true)
	e.checkDLQ(t, "org_events", orgs, true)
}

// TestBadInputThroughThePipeline produces every kind of bad input, each
// followed by a good record, on one partition. Each bad record lands in the
// DLQ once with its precise reason, duplicates are applied idempotently, and
// the partition keeps flowing to its end.
func TestBadInputThroughThePipeline(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(1, "user_events", "org_events"))
	const limit = 4096
	good := func(i int) []byte {
		return fmt.Appendf(nil, `{"id":"good-%d","event_type":"User Created","username":"good%d","received_at":"2021-03-01 00:00:%02d"}`, i, i, i%60)
	}
	deep := []byte(`{"id":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`)
	cases := []struct {
		name   string
		topic  string
		value  []byte
		code   string
		reason string // a substring of streamjoin.error
	}{
		{"malformed JSON", "user_events", []byte(`{"id":"x",`), "malformed_json", "invalid JSON"},
		{"array", "user_events", []byte(`[{"id":"x"}]`), "not_object", "JSON array, want an object"},
		{"scalar", "user_events", []byte(`"User Created"`), "not_object", "JSON string, want an object"},
		{"number", "user_events", []byte(`42`), "not_object", "JSON number"},
		{"wrong type", "user_events", []byte(`{"id":"x","event_type":"User Created","username":5,"received_at":"2021-03-01 00:00:00"}`), "wrong_type", "field username is a JSON number"},
		{"missing id", "user_events", []byte(`{"event_type":"User Created","username":"a","received_at":"2021-03-01 00:00:00"}`), "missing_field", "id is required"},
		{"empty username", "user_events", []byte(`{"id":"x","event_type":"User Created","username":"","received_at":"2021-03-01 00:00:00"}`), "missing_field", "username is required for User Created"},
		{"unknown event type", "user_events", []byte(`{"id":"x","event_type":"User Exploded","username":"a","received_at":"2021-03-01 00:00:00"}`), "unknown_event_type", `"User Exploded"`},
		{"unparseable time", "user_events", []byte(`{"id":"x","event_type":"User Created","username":"a","received_at":"yesterday"}`), "bad_timestamp", `received_at "yesterday"`},
		{"time out of range", "user_events", []byte(`{"id":"x","event_type":"User Created","username":"a","received_at":"0000-06-01T00:00:00Z"}`), "bad_timestamp", "out of range"},
		{"not UTF-8", "user_events", []byte("{\"id\":\"x\xff\",\"event_type\":\"User Created\",\"username\":\"a\",\"received_at\":\"2021-03-01 00:00:00\"}"), "not_utf8", "not valid UTF-8"},
		{"null value", "user_events", nil, "null_value", "record value is null"},
		{"over the size limit", "user_events", append([]byte(`{"id":"`), bytes.Repeat([]byte("x"), limit)...), "too_large", "over the limit of 4096"},
		{"deeply nested", "user_events", deep, "too_large", "over the limit"},
		{"deeply nested under the limit", "user_events", []byte(`{"id":` + strings.Repeat("[", 1500) + strings.Repeat("]", 1500) + `}`), "wrong_type", "field id is a JSON array"},
		{"org without a name", "org_events", []byte(`{"organization_key":"k","created_at":"2021-03-01 00:00:00"}`), "missing_field", "organization_name is required"},
		{"NUL in a user string", "user_events", []byte(`{"id":"x","event_type":"User Created","username":"a\u0000b","received_at":"2021-03-01 00:00:00"}`), "nul_character", "username contains a NUL"},
		{"NUL in an org string", "org_events", []byte(`{"organization_name":"o","organization_tier":"\u0000","created_at":"2021-03-01 00:00:00"}`), "nul_character", "organization_tier contains a NUL"},
		{"org with a bad time", "org_events", []byte(`{"organization_name":"o","created_at":"13/13/2021"}`), "bad_timestamp", `created_at "13/13/2021"`},
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i, tc := range cases {
		recs = append(recs, &kgo.Record{Topic: tc.topic, Value: tc.value}, &kgo.Record{Topic: "user_events", Value: good(i)})
	}
	// A duplicated good record: applied idempotently, not dead-lettered.
	recs = append(recs, &kgo.Record{Topic: "user_events", Value: good(0)})
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var users, orgs []*rec
	for i, r := range recs {
		x := &rec{partition: r.Partition, offset: r.Offset, invalid: i%2 == 0 && i < 2*len(cases), value: r.Value}
		if r.Topic == "org_events" {
			orgs = append(orgs, x)
		} else {
			users = append(users, x)
		}
	}
	cfg := e.config(7) // small batches: bad records at every position of a batch
	cfg.MaxValueBytes = limit
	e.start(t, cfg)
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})

	byOffset := map[string]deadLetter{}
	for _, topic := range []string{"user_events", "org_events"} {
		want := 0
		for _, tc := range cases {
			if tc.topic == topic {
				want++
			}
		}
		dl := readDLQ(t, e.broker, topic+".dlq")
		if len(dl) != want {
			t.Errorf("%s.dlq holds %d records, want %d", topic, len(dl), want)
		}
		for _, d := range dl {
			byOffset[topic+"/"+d.headers[dlq.HeaderSourceOffset]] = d
		}
	}
	for i, tc := range cases {
		d, ok := byOffset[tc.topic+"/"+strconv.FormatInt(recs[2*i].Offset, 10)]
		switch {
		case !ok:
			t.Errorf("%s: no dead letter", tc.name)
		case d.headers[dlq.HeaderErrorCode] != tc.code || !strings.Contains(d.headers[dlq.HeaderError], tc.reason):
			t.Errorf("%s: dead letter says %s %q, want %s containing %q", tc.name, d.headers[dlq.HeaderErrorCode], d.headers[dlq.HeaderError], tc.code, tc.reason)
		case !bytes.Equal([]byte(d.value), tc.value):
			t.Errorf("%s: dead letter value differs from the record's", tc.name)
		}
	}
	var n, raw int
	conn := e.conn(t)
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+e.schema+".users WHERE id LIKE 'good-%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+e.schema+".user_events").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if n != len(cases) || raw != len(cases)+1 {
		t.Errorf("%d good users and %d raw rows, want %d and %d (the duplicate logged, applied once)", n, raw, len(cases), len(cases)+1)
	}
}
