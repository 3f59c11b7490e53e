package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func (e *env) conn(t *testing.T) *pgx.Conn { return testenv.Conn(t) }

// waitCaughtUp waits until the stored offsets cover every produced record.
func (e *env) waitCaughtUp(t *testing.T, recs map[string][]*rec) {
	t.Helper()
	want := map[string]int64{}
	for topic, rs := range recs {
		want[topic] = 0
		ends := map[int32]int64{}
		for _, r := range rs {
			ends[r.partition] = max(ends[r.partition], r.offset+1)
		}
		for _, end := range ends {
			want[topic] += end
		}
	}
	conn := e.conn(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := map[string]int64{}
		rows, _ := conn.Query(context.Background(), "SELECT topic, coalesce(sum(next_offset), 0)::bigint FROM "+e.schema+".kafka_offsets GROUP BY topic")
		var topic string
		var sum int64
		_, err := pgx.ForEachRow(rows, []any{&topic, &sum}, func() error { got[topic] = sum; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if cmp.Equal(want, got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored offsets did not reach the end within 60s: got %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) checkState(t *testing.T, users, orgs []*rec) {
	t.Helper()
	ctx := context.Background()
	conn := e.conn(t)
	wantUsers, wantOrgs := oracle(users, orgs)

	gotUsers := map[string]userState{}
	rows, _ := conn.Query(ctx, "SELECT id, deleted, event_type, received_at, username, user_email, user_type, organization_name FROM "+e.schema+".users")
	var id string
	var s userState
	_, err := pgx.ForEachRow(rows, []any{&id, &s.Deleted, &s.EventType, &s.ReceivedAt, &s.Username, &s.Email, &s.UserType, &s.Organization}, func() error {
		s.ReceivedAt = s.ReceivedAt.UTC()
		if s.Deleted { // a tombstone's other fields are informational
			s.Username, s.Email, s.UserType, s.Organization = nil, nil, nil, nil
		}
		gotUsers[id] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantUsers, gotUsers); diff != "" {
		t.Errorf("users differ from the oracle (-want +got):\n%s", diff)
	}

	gotOrgs := map[string]string{}
	rows, _ = conn.Query(ctx, "SELECT organization_name, organization_tier FROM "+e.schema+".organizations")
	var name, tier string
	if _, err := pgx.ForEachRow(rows, []any{&name, &tier}, func() error { gotOrgs[name] = tier; return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantOrgs, gotOrgs); diff != "" {
		t.Errorf("organizations differ from the oracle (-want +got):\n%s", diff)
	}

	// Each raw log holds exactly the valid records, each once.
	for table, rs := range map[string][]*rec{"user_events": users, "org_events": orgs} {
		want := map[string]bool{}
		for _, r := range rs {
			if !r.invalid {
				want[fmt.Sprintf("%d/%d", r.partition, r.offset)] = true
			}
		}
		got := map[string]bool{}
		var n int
		rows, _ := conn.Query(ctx, "SELECT partition, \"offset\" FROM "+e.schema+"."+table)
		var p int32
		var o int64
		if _, err := pgx.ForEachRow(rows, []any{&p, &o}, func() error { n++; got[fmt.Sprintf("%d/%d", p, o)] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != len(want) || !cmp.Equal(want, got) {
			t.Errorf("%s: %d rows (%d distinct), want exactly the %d valid records", table, n, len(got), len(want))
		}
	}
}

type deadLetter struct {
	headers map[string]string
	value   string
}

// readDLQ reads every committed record of a dead-letter topic, read
// read_committed (as every reader of dead letters must: a fenced producer's
// aborted ones are in the log), up to the last committed one when called.
func readDLQ(t *testing.T, broker, topic string) []deadLetter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.New(kafka.Config{Brokers: []string{broker}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := kadm.NewClient(adm).Metadata(ctx, topic)
	adm.Close()
	if err != nil || meta.Topics[topic].Err != nil {
		t.Fatalf("metadata of %s: %v %v", topic, err, meta.Topics[topic].Err)
	}
	lasts, err := conn.LastRecords(ctx, "test-dlq-tail", topic, meta.Topics[topic].Partitions.Numbers())
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	for p, r := range lasts {
		left[p] = r.Offset
	}
	var out []deadLetter
	if len(left) == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (partitions left: %v)", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			last, ok := left[r.Partition]
			if !ok || r.Offset > last {
				return
			}
			if r.Offset == last {
				delete(left, r.Partition)
			}
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			out = append(out, deadLetter{headers: h, value: string(r.Value)})
		})
	}
	return out
}

func (e *env) checkDLQ(t *testing.T, topic string, recs []*rec, exact bool) {
	t.Helper()
	want := map[string]string{}
	for _, r := range recs {
		if r.invalid {
			want[fmt.Sprintf("%d/%d", r.partition, r.offset)] = string(r.value)
		}
	}
	dl := readDLQ(t, e.broker, topic+".dlq")
	got := map[string]string{}
	for _, d := range dl {
		for _, h := range []string{dlq.HeaderError, dlq.HeaderErrorCode, dlq.HeaderSourceTopic, dlq.HeaderSourcePartition, dlq.HeaderSourceOffset} {
			if d.headers[h] == "" {
				t.Errorf("dead letter %q lacks header %s", d.value, h)
			}
		}
		if d.headers[dlq.HeaderSourceTopic] != topic {
			t.Errorf("dead letter source topic = %q, want %q", d.headers[dlq.HeaderSourceTopic], topic)
		}
		got[d.headers[dlq.HeaderSourcePartition]+"/"+d.headers[dlq.HeaderSourceOffset]] = d.value
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s.dlq: dead letters by source position (-want +got):\n%s", topic, diff)
	}
	if exact && len(dl) != len(want) {
		t.Errorf("%s.dlq holds %d records, want exactly %d", topic, len(dl), len(want))
	}
}

// endOffsets returns the sum of topic's end offsets: how many records and
// transaction markers it holds, as nothing here deletes any.
func (e *env) endOffsets(t *testing.T, topic string) int64 {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.broker))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := ends.Error(); err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
