package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type env struct {
	broker  string
	cluster *kfake.Cluster
	st      *store.Store
	schema  string
}

func setup(t *testing.T, opts ...kfake.Opt) *env {
	t.Helper()
	broker, cluster := testenv.Kafka(t, opts...)
	st := testenv.Store(t)
	return &env{broker: broker, cluster: cluster, st: st, schema: st.Schema()}
}

func (e *env) config(maxPoll int) ingest.Config {
	return ingest.Config{
		Brokers:         []string{e.broker},
		Group:           "g",
		CreateTopics:    true,
		Partitions:      6,
		MaxPollRecords:  maxPoll,
		RetryBackoffMax: 200 * time.Millisecond,
	}
}

// start runs a consumer until the returned stop function is called.
func (e *env) start(t *testing.T, cfg ingest.Config) (stop func()) {
	t.Helper()
	return e.startWith(t, cfg, e.st)
}

// startWith runs a consumer that writes through w.
func (e *env) startWith(t *testing.T, cfg ingest.Config, w ingest.Writer) (stop func()) {
	t.Helper()
	c, err := ingest.New(cfg, w, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consumer Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("consumer did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// --- workload and oracle -------------------------------------------------

type rec struct {
	value   []byte
	invalid bool
	// parsed fields, for the oracle (valid records only)
	id, typ, username, email, userType, org string
	at                                      time.Time
	orgName, tier                           string
	// where it landed
	partition int32
	offset    int64
}

var rank = map[string]int{"User Created": 0, "User Updated": 1, "User Deleted": 2}

// workload makes user and org events with many ties, out-of-order arrival,
// duplicates and invalid records. It knows which records are invalid by
// construction, not by running the decoder.
func workload(seed uint64, nUsers, nEvents, nOrgs, nOrgEvents int) (users, orgs []*rec) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	base := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	when := func() time.Time { return base.Add(time.Duration(r.IntN(60)) * time.Minute) }
	orgName := func() string { return fmt.Sprintf("org-%d", r.IntN(nOrgs+3)) } // some orgs never arrive
	types := []string{"User Created", "User Updated", "User Deleted"}
	for i := 0; i < nEvents; i++ {
		if r.IntN(100) < 3 {
			bad := []string{
				`{"id":"x","event_type":"User Created","username":"","received_at":"2021-03-01 00:00:00"}`,
				`{"id":"x","event_type":"User Exploded","username":"a","received_at":"2021-03-01 00:00:00"}`,
				`{"id":"x","event_type":"User Created","username":"a","received_at":"not a time"}`,
				`{"id":"x","event_type":"User Created","username":5,"received_at":"2021-03-01 00:00:00"}`,
				`{"id":"x",`,
				`[]`,
			}
			users = append(users, &rec{value: []byte(bad[r.IntN(len(bad))]), invalid: true})
			continue
		}
		id := fmt.Sprintf("user-%d", r.IntN(nUsers))
		u := &rec{id: id, typ: types[r.IntN(3)], username: fmt.Sprintf("name-%d", r.IntN(nUsers/2)), // shared names
			email: fmt.Sprintf("%s-%d@example.com", id, i), userType: []string{"Admin", "User", "Creator"}[r.IntN(3)],
			org: orgName(), at: when()}
		u.value, _ = json.Marshal(map[string]any{
			"id": u.id, "event_type": u.typ, "username": u.username, "user_email": u.email,
			"user_type": u.userType, "organization_name": u.org, "received_at": u.at.Format("2006-01-02 15:04:05.000000"),
		})
		users = append(users, u)
		if r.IntN(100) < 2 { // an exact duplicate
			dup := *u
			users = append(users, &dup)
		}
	}
	for i := 0; i < nOrgEvents; i++ {
		if r.IntN(100) < 3 {
			orgs = append(orgs, &rec{value: []byte(`{"organization_key":"k","created_at":"2021-03-01 00:00:00"}`), invalid: true})
			continue
		}
		o := &rec{orgName: fmt.Sprintf("org-%d", r.IntN(nOrgs)), tier: []string{"gold", "silver", "bronze"}[r.IntN(3)], at: when()}
		o.value, _ = json.Marshal(map[string]any{"organization_key": "k-" + o.orgName, "organization_name": o.orgName, "organization_tier": o.tier, "created_at": o.at.Format(time.RFC3339)})
		orgs = append(orgs, o)
	}
	r.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	r.Shuffle(len(orgs), func(i, j int) { orgs[i], orgs[j] = orgs[j], orgs[i] })
	return users, orgs
}

// produce sends the records keyed by event time, as the seed does, so one
// user's events land on different partitions, and records where each landed.
func produce(t *testing.T, broker, topic string, recs []*rec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: []byte(r.at.String() + strconv.Itoa(i%7)), Value: r.value}
	}
	res := cl.ProduceSync(context.Background(), krs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i, kr := range krs {
		recs[i].partition, recs[i].offset = kr.Partition, kr.Offset
	}
}

type userState struct {
	Deleted                                 bool
	EventType                               string
	ReceivedAt                              time.Time
	Username, Email, UserType, Organization *string
}

// oracle computes the expected users and organizations by sorting each key's
// valid events by (time, type precedence, partition, offset) and taking the
// last. Fields of a live user come from its winning event.
func oracle(users, orgs []*rec) (map[string]userState, map[string]string) {
	byID := map[string][]*rec{}
	for _, u := range users {
		if !u.invalid {
			byID[u.id] = append(byID[u.id], u)
		}
	}
	wantUsers := map[string]userState{}
	for id, evs := range byID {
		sort.Slice(evs, func(i, j int) bool {
			a, b := evs[i], evs[j]
			if !a.at.Equal(b.at) {
				return a.at.Before(b.at)
			}
			if rank[a.typ] != rank[b.typ] {
				return rank[a.typ] < rank[b.typ]
			}
			if a.partition != b.partition {
				return a.partition < b.partition
			}
			return a.offset < b.offset
		})
		w := evs[len(evs)-1]
		s := userState{Deleted: w.typ == "User Deleted", EventType: w.typ, ReceivedAt: w.at}
		if !s.Deleted {
			s.Username, s.Email, s.UserType, s.Organization = &w.username, &w.email, &w.userType, &w.org
		}
		wantUsers[id] = s
	}
	best := map[string]*rec{}
	for _, o := range orgs {
		if o.invalid {
			continue
		}
		b := best[o.orgName]
		if b == nil || o.at.After(b.at) || (o.at.Equal(b.at) && (o.partition > b.partition || o.partition == b.partition && o.offset > b.offset)) {
			best[o.orgName] = o
		}
	}
	wantOrgs := map[string]string{}
	for name, o := range best {
		wantOrgs[name] = o.tier
	}
	return wantUsers, wantOrgs
}

// --- checks ---------------------------------------------------------------

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

// readDLQ reads every record of a dead-letter topic.
func readDLQ(t *testing.T, broker, topic string, atLeast int) []deadLetter {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []deadLetter
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(out) < atLeast {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			out = append(out, deadLetter{headers: h, value: string(r.Value)})
		})
	}
	// Drain anything more that is already there.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	cl.PollFetches(ctx2).EachRecord(func(r *kgo.Record) { out = append(out, deadLetter{value: string(r.Value)}) })
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
	dl := readDLQ(t, e.broker, topic+".dlq", len(want))
	got := map[string]string{}
	for _, d := range dl {
		if d.headers == nil {
			continue
		}
		for _, h := range []string{ingest.HeaderError, ingest.HeaderErrorCode, ingest.HeaderSourceTopic, ingest.HeaderSourcePartition, ingest.HeaderSourceOffset} {
			if d.headers[h] == "" {
				t.Errorf("dead letter %q lacks header %s", d.value, h)
			}
		}
		if d.headers[ingest.HeaderSourceTopic] != topic {
			t.Errorf("dead letter source topic = %q, want %q", d.headers[ingest.HeaderSourceTopic], topic)
		}
		got[d.headers[ingest.HeaderSourcePartition]+"/"+d.headers[ingest.HeaderSourceOffset]] = d.value
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s.dlq: dead letters by source position (-want +got):\n%s", topic, diff)
	}
	if exact && len(dl) != len(want) {
		t.Errorf("%s.dlq holds %d records, want exactly %d", topic, len(dl), len(want))
	}
}

// --- tests ----------------------------------------------------------------

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
	for round := 0; round < 3; round++ {
		stop := e.start(t, e.config(100))
		// Let it commit some batches, then stop it mid-stream.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var committed int64
			if err := conn.QueryRow(context.Background(), "SELECT coalesce(sum(next_offset),0)::bigint FROM "+e.schema+".kafka_offsets").Scan(&committed); err != nil {
				t.Fatal(err)
			}
			if committed > int64((round+1)*800) || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop()
	}
	e.start(t, e.config(100))
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	e.checkState(t, users, orgs)
	e.checkDLQ(t, "user_events", users, true)
	e.checkDLQ(t, "org_events", orgs, true)
}

// crashingWriter fails every batch after its dead letters were produced, as
// a process killed between the DLQ acknowledgement and the Postgres commit
// would leave things.
type crashingWriter struct {
	ingest.Writer
	attempts atomic.Int64
}

func (w *crashingWriter) WriteBatch(context.Context, *store.Batch) error {
	w.attempts.Add(1)
	return errors.New("simulated crash before commit")
}

// TestDeadLettersNotDuplicatedAfterCrash: a member produces dead letters and
// never commits; its successor reads the DLQ's tail on assignment and does not
// produce them again.
func TestDeadLettersNotDuplicatedAfterCrash(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(6, "user_events", "org_events"))
	users, orgs := workload(3, 100, 1500, 10, 200)
	produce(t, e.broker, "user_events", users)
	produce(t, e.broker, "org_events", orgs)
	cfg := e.config(5000)
	cfg.ShutdownTimeout = 100 * time.Millisecond
	w := &crashingWriter{Writer: e.st}
	stop := e.startWith(t, cfg, w)
	for deadline := time.Now().Add(30 * time.Second); w.attempts.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the crashing writer was never called")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if n := len(readDLQ(t, e.broker, "user_events.dlq", 1)); n == 0 {
		t.Fatal("the first member produced no dead letters before its failed commit")
	}
	e.start(t, e.config(5000))
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	e.checkState(t, users, orgs)
	e.checkDLQ(t, "user_events", users, true)
	e.checkDLQ(t, "org_events", orgs, true)
}

// TestDeadLetterProduceFailureHoldsOffset: while the broker refuses the dead
// letter, the partition's stored offset does not move past the bad record;
// once the broker accepts it, the partition flows on and the DLQ holds it
// once.
func TestDeadLetterProduceFailureHoldsOffset(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(6, "user_events", "org_events"))
	var failing atomic.Bool
	var refused atomic.Int64
	failing.Store(true)
	// The consumer produces nothing but dead letters, so refuse every
	// produce request while failing is set.
	e.cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	// Before the control takes effect for the consumer, put one bad record
	// and then good ones on partition 0. This producer's requests go through
	// while failing is briefly off.
	failing.Store(false)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.broker), kgo.DefaultProduceTopic("user_events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	recs := []*kgo.Record{{Value: []byte(`{"id":"bad"`)}}
	for i := range 5 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":"u%d","event_type":"User Created","username":"n%d","received_at":"2021-03-01 00:00:00"}`, i, i)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	failing.Store(true)

	e.start(t, e.config(100))
	for deadline := time.Now().Add(30 * time.Second); refused.Load() < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the consumer never tried to produce the dead letter")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var next *int64
	err = e.conn(t).QueryRow(context.Background(), "SELECT next_offset FROM "+e.schema+".kafka_offsets WHERE topic = 'user_events' AND partition = 0").Scan(&next)
	if err != nil {
		t.Fatal(err)
	}
	if next != nil {
		t.Fatalf("stored offset moved to %d while the dead letter was refused", *next)
	}

	failing.Store(false)
	users := []*rec{{invalid: true, partition: 0, offset: 0, value: recs[0].Value}}
	for i := 1; i < len(recs); i++ {
		users = append(users, &rec{partition: 0, offset: int64(i)})
	}
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": nil})
	e.checkDLQ(t, "user_events", users, true)
}

// replaceWhilePaused runs a consumer writing through w, waits until w has
// paused it (paused closed; it never did what), and then claims partition 0
// of both topics as a successor would on its assignment.
func (e *env) replaceWhilePaused(t *testing.T, w ingest.Writer, paused <-chan struct{}, what string) {
	t.Helper()
	cfg := e.config(5000)
	cfg.ShutdownTimeout = 100 * time.Millisecond
	e.startWith(t, cfg, w)
	select {
	case <-paused:
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer never " + what)
	}
	tps := []store.TopicPartition{{Topic: "user_events", Partition: 0}, {Topic: "org_events", Partition: 0}}
	if _, err := e.st.ClaimOffsets(context.Background(), tps); err != nil {
		t.Fatal(err)
	}
}

// pausingWriter holds the first batch until released, like a member paused
// (SIGSTOP, a long GC) between polling and committing, and records what the
// store answered when it resumed.
type pausingWriter struct {
	ingest.Writer
	paused  chan struct{}
	release chan struct{}
	once    sync.Once
	first   chan error
}

func (w *pausingWriter) WriteBatch(ctx context.Context, b *store.Batch) error {
	first := false
	w.once.Do(func() { first = true })
	if !first {
		// Nothing else commits until the test has looked: the member,
		// still assigned the partition by Kafka, claims it again and
		// would write the same records legitimately.
		<-ctx.Done()
		return ctx.Err()
	}
	close(w.paused)
	<-w.release
	err := w.Writer.WriteBatch(ctx, b)
	w.first <- err
	return err
}

// TestZombieBatchIsFenced: while a member is paused with a batch in hand,
// another member claims its partitions. When the paused member resumes, its
// batch is refused and nothing of it lands.
func TestZombieBatchIsFenced(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(1, "user_events", "org_events"))
	users, _ := workload(4, 50, 300, 5, 0)
	produce(t, e.broker, "user_events", users)
	w := &pausingWriter{Writer: e.st, paused: make(chan struct{}), release: make(chan struct{}), first: make(chan error, 1)}
	e.replaceWhilePaused(t, w, w.paused, "wrote a batch")
	close(w.release)
	if err := <-w.first; store.Classify(err) != store.Fenced {
		t.Fatalf("the paused member's batch: err = %v, want fenced", err)
	}
	var n int
	if err := e.conn(t).QueryRow(context.Background(), "SELECT (SELECT count(*) FROM "+e.schema+".user_events) + (SELECT count(*) FROM "+e.schema+".users) + (SELECT count(*) FROM "+e.schema+".kafka_offsets WHERE next_offset IS NOT NULL)").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the fenced batch left %d rows behind", n)
	}
}

// ownerCheckPauser holds the first ownership check, which comes right
// before a batch's dead letters are produced, like a member paused there;
// checked gets what the check answered after the release.
type ownerCheckPauser struct {
	ingest.Writer
	once    sync.Once
	paused  chan struct{}
	release chan struct{}
	checked chan []store.TopicPartition
}

func (w *ownerCheckPauser) LostPartitions(ctx context.Context, owned []store.OffsetAdvance) ([]store.TopicPartition, error) {
	first := false
	w.once.Do(func() { first = true })
	if !first {
		return w.Writer.LostPartitions(ctx, owned)
	}
	close(w.paused)
	<-w.release
	lost, err := w.Writer.LostPartitions(ctx, owned)
	w.checked <- lost
	return lost, err
}

// TestReplacedMemberProducesNoDeadLetters: a member about to produce a
// batch's dead letters is replaced (its partitions claimed by a successor).
// It must not produce them: the successor has read the DLQ's tail, or will,
// and produces them itself.
func TestReplacedMemberProducesNoDeadLetters(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(1, "user_events", "org_events"))
	users, _ := workload(4, 50, 300, 5, 0)
	invalid := 0
	for _, u := range users {
		if u.invalid {
			invalid++
		}
	}
	if invalid == 0 {
		t.Fatal("the workload has no invalid record: this test would prove nothing")
	}
	produce(t, e.broker, "user_events", users)
	w := &ownerCheckPauser{Writer: e.st, paused: make(chan struct{}), release: make(chan struct{}), checked: make(chan []store.TopicPartition, 1)}
	e.replaceWhilePaused(t, w, w.paused, "checked that it still owns its partitions before producing dead letters")
	close(w.release)
	select {
	case lost := <-w.checked:
		if len(lost) == 0 {
			t.Fatal("the ownership check found nothing lost after the successor's claim")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the ownership check did not return")
	}
	// A replaced member that goes on produces at once; give it the time.
	// (It claims the partition again only after a session timeout, 45 s.)
	time.Sleep(500 * time.Millisecond)
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.broker))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(context.Background(), "user_events.dlq")
	if err != nil {
		t.Fatal(err)
	}
	produced := int64(0)
	ends.Each(func(o kadm.ListedOffset) { produced += o.Offset })
	if produced != 0 {
		t.Errorf("the replaced member produced %d dead letters after its successor's claim; want 0 (the batch has %d)", produced, invalid)
	}
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
		dl := readDLQ(t, e.broker, topic+".dlq", want)
		if len(dl) != want {
			t.Errorf("%s.dlq holds %d records, want %d", topic, len(dl), want)
		}
		for _, d := range dl {
			byOffset[topic+"/"+d.headers[ingest.HeaderSourceOffset]] = d
		}
	}
	for i, tc := range cases {
		d, ok := byOffset[tc.topic+"/"+strconv.FormatInt(recs[2*i].Offset, 10)]
		switch {
		case !ok:
			t.Errorf("%s: no dead letter", tc.name)
		case d.headers[ingest.HeaderErrorCode] != tc.code || !strings.Contains(d.headers[ingest.HeaderError], tc.reason):
			t.Errorf("%s: dead letter says %s %q, want %s containing %q", tc.name, d.headers[ingest.HeaderErrorCode], d.headers[ingest.HeaderError], tc.code, tc.reason)
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

// TestLateClaimByAReplacedMemberIsTakenBack: a member paused in the middle
// of claiming can finish its claim after the group moved on, fencing the
// partition's rightful owner. The owner, still assigned the partition by
// Kafka, claims it again after a session timeout instead of stalling.
func TestLateClaimByAReplacedMemberIsTakenBack(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(2, "user_events", "org_events"),
		kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "500"}))
	users, orgs := workload(5, 100, 2000, 10, 100)
	half := len(users) / 2
	produce(t, e.broker, "user_events", users[:half])
	produce(t, e.broker, "org_events", orgs)
	cfg := e.config(200)
	cfg.SessionTimeout = time.Second
	e.start(t, cfg)
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users[:half], "org_events": orgs})

	// The late claim of a replaced member.
	var tps []store.TopicPartition
	for p := int32(0); p < 2; p++ {
		tps = append(tps, store.TopicPartition{Topic: "user_events", Partition: p}, store.TopicPartition{Topic: "org_events", Partition: p})
	}
	if _, err := e.st.ClaimOffsets(context.Background(), tps); err != nil {
		t.Fatal(err)
	}
	produce(t, e.broker, "user_events", users[half:])
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	e.checkState(t, users, orgs)
	e.checkDLQ(t, "user_events", users, true)
}

// TestRefusesADLQWithFewerPartitions: dead letters of partition p go to DLQ
// partition p, so a DLQ topic with fewer partitions than its source is a
// start-up error that names it.
func TestRefusesADLQWithFewerPartitions(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(6, "user_events", "org_events"))
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.broker))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 2, 1, nil, "user_events.dlq"); err != nil {
		t.Fatal(err)
	}
	c, err := ingest.New(e.config(100), e.st, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "user_events.dlq has 2 partitions, fewer than the 6") {
		t.Fatalf("Run = %v, want an error about user_events.dlq's partitions", err)
	}
}
