package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// figures are what the end checks measured.
type figures struct {
	Test           string `json:"test"`
	Date           string `json:"date"`
	Events         int    `json:"records_produced"`
	InvalidRecords int    `json:"invalid_records"`
	Kills          int    `json:"sigkills"`
	KillsInCommit  int    `json:"sigkills_inside_commit"`
	Restarts       int    `json:"restarts"`
	UserMismatches int    `json:"user_rows_differing"`
	OrgMismatches  int    `json:"org_rows_differing"`
	RawLost        int    `json:"raw_records_lost"`
	RawDuplicated  int    `json:"raw_records_duplicated"`
	RawInvalid     int    `json:"raw_rows_of_invalid_records"`
	DLQLost        int    `json:"dead_letters_lost"`
	DLQDuplicated  int    `json:"dead_letters_duplicated"`
	DLQUnexpected  int    `json:"dead_letters_unexpected"`
	ZombieFenced   int    `json:"zombie_batches_fenced"`
	// The changelog topic, read read_committed (changelog_test.go).
	ChangelogRecords        int `json:"changelog_records"`
	ChangelogKeysDiffering  int `json:"changelog_keys_differing_from_view"`
	ChangelogOutOfOrder     int `json:"changelog_records_out_of_order"`
	ChangelogCommitsMissing int `json:"changelog_commits_missing"`
	// The enriched topic, read read_committed (enriched_test.go).
	EnrichedRecords       int `json:"enriched_records"`
	EnrichedCorrections   int `json:"enriched_corrections"`
	EnrichedMissing       int `json:"enriched_events_missing"`
	EnrichedKeysDiffering int `json:"enriched_keys_differing_from_oracle"`
	EnrichedDuplicated    int `json:"enriched_records_duplicated"`
	EnrichedUnexpected    int `json:"enriched_records_unexpected"`
	// The activity windows and topic (activity_test.go).
	ActivityRecords          int `json:"activity_records"`
	ActivityWindowsDiffering int `json:"activity_windows_differing_from_oracle"`
	ActivityTopicDiffering   int `json:"activity_topic_windows_differing_from_state"`
	ActivityRecordsMisplaced int `json:"activity_records_misplaced"`
	DurationSeconds          int `json:"duration_seconds"`
}

// check compares PostgreSQL and the dead-letter topics (read
// read_committed) with the stream and fails the test on any difference, a
// duplicated dead letter included. It fills the correctness figures of f.
func (h *harness) check(s *stream, f *figures) {
	h.t.Helper()
	ctx := context.Background()
	f.Date = time.Now().UTC().Format(time.RFC3339)
	for _, topic := range h.topics {
		f.Events += s.valid[topic] + len(s.invalid[topic])
		f.InvalidRecords += len(s.invalid[topic])
	}

	// users and organizations equal the oracle.
	got := map[string]workload.UserState{}
	rows, err := h.conn.Query(ctx, "SELECT id, deleted, event_type, received_at, coalesce(username, ''), coalesce(user_email, ''), coalesce(user_type, ''), coalesce(organization_name, '') FROM "+h.schema+".users")
	if err != nil {
		h.t.Fatal(err)
	}
	var id string
	var u workload.UserState
	if _, err := pgx.ForEachRow(rows, []any{&id, &u.Deleted, &u.EventType, &u.ReceivedAt, &u.Username, &u.Email, &u.UserType, &u.Organization}, func() error {
		u.ReceivedAt = u.ReceivedAt.UTC()
		if u.Deleted { // a tombstone keeps the last live fields; only deleted matters
			u.Username, u.Email, u.UserType, u.Organization = "", "", "", ""
		}
		got[id] = u
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	for id, w := range s.want.Users {
		if g, ok := got[id]; !ok || g != w {
			if f.UserMismatches < 5 {
				h.t.Errorf("user %s = %+v, want %+v", id, g, w)
			}
			f.UserMismatches++
		}
	}
	for id, g := range got {
		if _, ok := s.want.Users[id]; !ok {
			if f.UserMismatches < 5 {
				h.t.Errorf("user %s = %+v is stored, want no such user", id, g)
			}
			f.UserMismatches++
		}
	}
	gotOrgs := map[string]string{}
	rows, err = h.conn.Query(ctx, "SELECT organization_name, organization_tier FROM "+h.schema+".organizations")
	if err != nil {
		h.t.Fatal(err)
	}
	var name, tier string
	if _, err := pgx.ForEachRow(rows, []any{&name, &tier}, func() error { gotOrgs[name] = tier; return nil }); err != nil {
		h.t.Fatal(err)
	}
	for name, w := range s.want.Orgs {
		if g, ok := gotOrgs[name]; !ok || g != w {
			if f.OrgMismatches < 5 {
				h.t.Errorf("organization %s tier = %q, want %q", name, gotOrgs[name], w)
			}
			f.OrgMismatches++
		}
	}
	for name, g := range gotOrgs {
		if _, ok := s.want.Orgs[name]; !ok {
			if f.OrgMismatches < 5 {
				h.t.Errorf("organization %s tier = %q is stored, want no such organization", name, g)
			}
			f.OrgMismatches++
		}
	}

	// Each raw log holds exactly one row per valid record: no position
	// twice, none of an invalid record, and as many distinct positions as
	// valid records, all of them below their partition's end offset (so the
	// set is right).
	for table, topic := range map[string]string{"user_events": "user_events", "org_events": "org_events"} {
		var ps, endPs []int32
		var os, ends []int64
		for p := range s.invalid[topic] {
			ps, os = append(ps, p.partition), append(os, p.offset)
		}
		for p, end := range s.ends[topic] {
			endPs, ends = append(endPs, p), append(ends, end)
		}
		var outside int
		if err := h.conn.QueryRow(ctx, "SELECT count(*) FROM "+h.schema+"."+table+" e LEFT JOIN unnest($1::int[], $2::bigint[]) AS b(p, e) ON e.partition = b.p WHERE b.p IS NULL OR e.\"offset\" < 0 OR e.\"offset\" >= b.e", endPs, ends).Scan(&outside); err != nil {
			h.t.Fatal(err)
		}
		if outside != 0 {
			h.t.Errorf("%s: %d rows at positions never produced", table, outside)
		}
		var n, distinct, atInvalid int
		if err := h.conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT (partition, \"offset\")) FROM "+h.schema+"."+table).Scan(&n, &distinct); err != nil {
			h.t.Fatal(err)
		}
		err := h.conn.QueryRow(ctx, "SELECT count(DISTINCT (e.partition, e.\"offset\")) FROM "+h.schema+"."+table+" e JOIN unnest($1::int[], $2::bigint[]) AS b(p, o) ON e.partition = b.p AND e.\"offset\" = b.o", ps, os).Scan(&atInvalid)
		if err != nil {
			h.t.Fatal(err)
		}
		valid := distinct - atInvalid
		f.RawInvalid += atInvalid
		f.RawLost += max(0, s.valid[topic]-valid)
		f.RawDuplicated += n - distinct
		if valid != s.valid[topic] || atInvalid != 0 || n != distinct {
			h.t.Errorf("%s: %d distinct positions of valid records, %d rows in all, %d positions of invalid records; want exactly the %d valid records once each", table, valid, n, atInvalid, s.valid[topic])
		}
	}

	// Each dead-letter topic holds exactly one record per invalid record.
	for _, topic := range h.topics {
		dl := h.readDLQ(topic + ".dlq")
		seen := map[position]int{}
		for _, d := range dl {
			if d.Headers[dlq.HeaderError] == "" || d.Headers[dlq.HeaderErrorCode] == "" || d.Headers[dlq.HeaderSourceTopic] != topic {
				h.t.Errorf("%s.dlq: record without its reason or source: %v", topic, d.Headers)
			}
			p, perr := strconv.ParseInt(d.Headers[dlq.HeaderSourcePartition], 10, 32)
			o, oerr := strconv.ParseInt(d.Headers[dlq.HeaderSourceOffset], 10, 64)
			if perr != nil || oerr != nil {
				h.t.Errorf("%s.dlq: record without a readable source position: %v", topic, d.Headers)
				f.DLQUnexpected++
				continue
			}
			seen[position{int32(p), o}]++
		}
		for pos, n := range seen {
			switch {
			case !s.invalid[topic][pos]:
				f.DLQUnexpected += n
			case n > 1:
				f.DLQDuplicated += n - 1
			}
		}
		for pos := range s.invalid[topic] {
			if seen[pos] == 0 {
				f.DLQLost++
			}
		}
	}
	if f.DLQLost+f.DLQUnexpected+f.DLQDuplicated > 0 {
		h.t.Errorf("dead letters: %d lost, %d duplicated, %d unexpected", f.DLQLost, f.DLQDuplicated, f.DLQUnexpected)
	}
	others := h.checkEnriched(s, f)
	for n := range h.checkActivity(s, f) {
		others[n] = true
	}
	h.checkChangelog(f, others)
}

type deadLetter struct {
	Headers map[string]string
	Value   []byte
}

// readDLQ reads a dead-letter topic from its start to its last committed
// record, read_committed, as every reader of dead letters must: a fenced
// producer's aborted dead letters stay in the log.
func (h *harness) readDLQ(topic string) []deadLetter {
	h.t.Helper()
	var out []deadLetter
	for _, r := range h.readTopic(topic) {
		hs := map[string]string{}
		for _, kv := range r.Headers {
			hs[kv.Key] = string(kv.Value)
		}
		out = append(out, deadLetter{Headers: hs, Value: r.Value})
	}
	return out
}

// readTopic reads a topic from its start to its last committed record,
// read_committed.
func (h *harness) readTopic(topic string) []*kgo.Record {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(h.broker))
	if err != nil {
		h.t.Fatal(err)
	}
	meta, err := kadm.NewClient(adm).Metadata(ctx, topic)
	adm.Close()
	if err == nil {
		err = meta.Topics[topic].Err
	}
	if err != nil {
		h.t.Fatalf("metadata of %s: %v", topic, err)
	}
	conn, err := kafka.New(kafka.Config{Brokers: []string{h.broker}}, nil, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	lasts, err := conn.LastRecords(ctx, "chaos-tail", topic, meta.Topics[topic].Partitions.Numbers())
	if err != nil {
		h.t.Fatalf("reading the last records of %s: %v", topic, err)
	}
	left := map[int32]int64{} // partition → offset of its last committed record
	for p, r := range lasts {
		left[p] = r.Offset
	}
	if len(left) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		h.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			h.t.Fatalf("reading %s: %v (partitions left: %v)", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			last, ok := left[r.Partition]
			if !ok || r.Offset > last {
				return
			}
			if r.Offset == last {
				delete(left, r.Partition)
			}
			out = append(out, r)
		})
	}
	return out
}

// finish checks the end state (check), stops procs with SIGTERM, each of
// which must exit 0, and reports f with the test's duration.
func (h *harness) finish(s *stream, f *figures, started time.Time, procs ...*proc) {
	h.t.Helper()
	h.check(s, f)
	for _, p := range procs {
		p.stop(h.t, 20*time.Second)
	}
	f.DurationSeconds = int(time.Since(started).Seconds())
	report(h.t, *f)
}

// report logs a test's figures (figures, watchFigures, or a map for a
// test with figures of its own) and appends them as a JSON line to the
// -chaos.report file, if one was named.
func report(t *testing.T, f any) {
	t.Helper()
	b, _ := json.Marshal(f)
	t.Logf("figures: %s", b)
	if *flagReport == "" {
		return
	}
	file, err := os.OpenFile(*flagReport, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	fmt.Fprintf(file, "%s\n", b)
}
