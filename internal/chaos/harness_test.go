package chaos_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/testenv"
	"github.com/streamjoin/streamjoin/internal/workload"
)

var (
	flagEvents = flag.Int("chaos.events", 100_000, "user events each chaos test produces")
	flagKills  = flag.Int("chaos.kills", 10, "SIGKILLs in TestCrashes")
	flagReport = flag.String("chaos.report", "", "append one JSON line of figures per test to this file")
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := testenv.Main(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds the real streamjoin binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "streamjoin-chaos-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "streamjoin")
		if out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/streamjoin").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// harness is one test's world: a broker, a schema, and the streamjoin
// processes it starts.
type harness struct {
	t       *testing.T
	broker  string
	kafka   *kfake.Cluster
	pgDSN   string
	schema  string
	conn    *pgx.Conn
	logDir  string
	nprocs  int
	topics  []string
	session time.Duration
}

// setup starts a broker with both topics (6 partitions) and picks a fresh
// schema on the PostgreSQL at pgDSN ("" for the shared test server). With
// broker set, it uses that address and starts no broker.
func setup(t *testing.T, pgDSN, broker string) *harness {
	t.Helper()
	h := &harness{t: t, pgDSN: pgDSN, broker: broker, topics: []string{"user_events", "org_events"}, session: 2 * time.Second}
	if h.pgDSN == "" {
		h.pgDSN = testenv.PostgresDSN(t)
		h.schema = testenv.Schema(t)
	} else {
		h.schema = "chaos" // a private server, used by this test alone
	}
	if h.broker == "" {
		h.broker, h.kafka = testenv.Kafka(t, h.kafkaOpts()...)
	}
	h.logDir = t.TempDir()
	h.conn = h.connect()
	t.Cleanup(func() {
		if t.Failed() {
			h.dumpLogs()
		}
	})
	return h
}

// kafkaOpts are the broker's options: both topics, and a minimum session
// timeout below Kafka's 6s default so that the tests' 2s sessions are
// accepted.
func (h *harness) kafkaOpts() []kfake.Opt {
	return []kfake.Opt{
		kfake.SeedTopics(6, h.topics...),
		kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "500"}),
	}
}

func (h *harness) connect() *pgx.Conn {
	h.t.Helper()
	conn, err := pgx.Connect(context.Background(), h.pgDSN)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// reconnect replaces the harness's connection after a database restart.
func (h *harness) reconnect() { h.conn = h.connect() }

// privatePostgres starts a PostgreSQL of the test's own, which it may stop
// and start again on the same port and data.
func privatePostgres(t *testing.T) (start func() *devenv.Postgres) {
	t.Helper()
	dir, err := os.MkdirTemp("", "streamjoin-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755) // the postgres user must reach it when we run as root
	t.Cleanup(func() { os.RemoveAll(dir) })
	port := freePort(t)
	return func() *devenv.Postgres {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		pg, err := devenv.StartPostgres(ctx, devenv.PostgresConfig{Dir: filepath.Join(dir, "data"), Port: port, Fast: true}, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pg.Stop() })
		return pg
	}
}

func (h *harness) appName() string { return "sj-" + h.schema }

func (h *harness) dumpLogs() {
	entries, _ := os.ReadDir(h.logDir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(h.logDir, e.Name()))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		h.t.Logf("--- last lines of %s:\n%s", e.Name(), strings.Join(lines, "\n"))
	}
}

// proc is one streamjoin process.
type proc struct {
	name string
	cmd  *exec.Cmd
	base string // http://host:port of its API
	log  string
	done chan struct{}
	err  error
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs `streamjoin run` against the harness's broker and schema, with a
// short session timeout so that a killed member's partitions move on fast.
func (h *harness) start(extra ...string) *proc {
	h.t.Helper()
	h.nprocs++
	p := &proc{name: fmt.Sprintf("proc-%02d", h.nprocs), done: make(chan struct{})}
	port := freePort(h.t)
	p.base = "http://127.0.0.1:" + strconv.Itoa(port)
	sep := "?"
	if strings.Contains(h.pgDSN, "?") {
		sep = "&"
	}
	args := []string{"run",
		"--brokers", h.broker,
		"--postgres", h.pgDSN + sep + "application_name=" + h.appName() + "-" + p.name,
		"--schema", h.schema,
		"--http-addr", p.base[len("http://"):],
		"--session-timeout", h.session.String(),
		"--rebalance-timeout", "5s",
		"--pg-idle-in-transaction-timeout", "2s",
		"--retry-backoff-max", "1s",
		"--max-poll-records", "2000",
		"--shutdown-timeout", "10s",
		"--log-format", "json",
	}
	p.cmd = exec.Command(binary(h.t), append(args, extra...)...)
	p.log = filepath.Join(h.logDir, p.name+".log")
	f, err := os.Create(p.log)
	if err != nil {
		h.t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	h.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: sending %v: %v", p.name, sig, err)
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	<-p.done
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and requires exit status 0 within limit; it returns how
// long the exit took.
func (p *proc) stop(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(limit):
		// Ask the Go runtime for every goroutine's stack, to see where it
		// is stuck.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		<-p.done
		b, _ := os.ReadFile(p.log)
		if i := strings.Index(string(b), "SIGQUIT"); i >= 0 {
			b = b[i:]
		}
		t.Fatalf("%s did not exit within %s of SIGTERM; goroutines:\n%s", p.name, limit, b)
	}
	if p.err != nil {
		t.Errorf("%s exited with %v after SIGTERM, want status 0", p.name, p.err)
	}
	return time.Since(start)
}

// logHas reports whether the process logged a message containing msg.
func (p *proc) logHas(msg string) bool {
	b, _ := os.ReadFile(p.log)
	return strings.Contains(string(b), msg)
}

// logCount counts log lines containing msg.
func (p *proc) logCount(msg string) int {
	f, err := os.Open(p.log)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), msg) {
			n++
		}
	}
	return n
}

// --- the stream ----------------------------------------------------------

type position struct {
	partition int32
	offset    int64
}

// stream is what was produced, as the checks need it.
type stream struct {
	done chan struct{}
	err  error

	mu      sync.Mutex
	want    workload.Expected
	ends    map[string]map[int32]int64 // topic → partition → end offset
	invalid map[string]map[position]bool
	valid   map[string]int
}

func topicOf(k workload.Kind) string {
	if k == workload.OrgEvent {
		return "org_events"
	}
	return "user_events"
}

// produce generates cfg's stream and produces it at about rate records per
// second (0: as fast as possible), in the background. pause, if not nil, is
// called before each chunk and may block.
func (h *harness) produce(cfg workload.Config, rate int, pause func()) *stream {
	h.t.Helper()
	g, err := workload.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	s := &stream{done: make(chan struct{}), ends: map[string]map[int32]int64{}, invalid: map[string]map[position]bool{}, valid: map[string]int{}}
	for _, topic := range h.topics {
		s.ends[topic] = map[int32]int64{}
		s.invalid[topic] = map[position]bool{}
	}
	go func() {
		defer close(s.done)
		s.err = h.produceAll(g, s, rate, pause)
		s.want = g.Expected()
	}()
	h.t.Cleanup(func() { <-s.done })
	return s
}

func (h *harness) produceAll(g *workload.Generator, s *stream, rate int, pause func()) error {
	newClient := func() (*kgo.Client, error) {
		return kgo.NewClient(kgo.SeedBrokers(h.broker), kgo.ProducerLinger(5*time.Millisecond))
	}
	cl, err := newClient()
	if err != nil {
		return err
	}
	defer func() { cl.Close() }()
	chunk := 1000
	var tick time.Duration
	if rate > 0 {
		chunk = max(1, rate/50)
		tick = 20 * time.Millisecond
	}
	var firstErr error
	var errMu sync.Mutex
	next := time.Now()
	for more := true; more; {
		if pause != nil {
			pause()
		}
		for i := 0; i < chunk; i++ {
			r, ok := g.Next()
			if !ok {
				more = false
				break
			}
			kr := &kgo.Record{Topic: topicOf(r.Kind), Key: r.Key, Value: r.Value}
			invalid := r.Invalid
			cl.Produce(context.Background(), kr, func(kr *kgo.Record, err error) {
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					return
				}
				s.mu.Lock()
				defer s.mu.Unlock()
				s.ends[kr.Topic][kr.Partition] = max(s.ends[kr.Topic][kr.Partition], kr.Offset+1)
				if invalid {
					s.invalid[kr.Topic][position{kr.Partition, kr.Offset}] = true
				} else {
					s.valid[kr.Topic]++
				}
			})
		}
		if tick > 0 {
			next = next.Add(tick)
			time.Sleep(time.Until(next))
		}
		if pause != nil {
			// A pause may be an outage: make sure what was produced so far
			// is acknowledged before the next chunk.
			if err := cl.Flush(context.Background()); err != nil {
				return err
			}
		}
	}
	if err := cl.Flush(context.Background()); err != nil {
		return err
	}
	return firstErr
}

// --- waiting and checking ----------------------------------------------

// committed returns the sum of stored next offsets per topic.
func (h *harness) committed() map[string]int64 {
	got := map[string]int64{}
	rows, err := h.conn.Query(context.Background(), "SELECT topic, coalesce(sum(next_offset), 0)::bigint FROM "+h.schema+".kafka_offsets GROUP BY topic")
	if err != nil {
		return got // the schema may not exist yet
	}
	var topic string
	var sum int64
	_, _ = pgx.ForEachRow(rows, []any{&topic, &sum}, func() error { got[topic] = sum; return nil })
	return got
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// waitProgress waits until more is committed than before, or limit passes.
func (h *harness) waitProgress(before int64, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if total(h.committed()) > before {
			return true
		}
	}
	return false
}

// waitInTransaction waits until a streamjoin connection is inside a
// transaction that has written something: a batch commit in progress.
func (h *harness) waitInTransaction(limit time.Duration) bool {
	return h.waitWriting(h.appName()+"-%", true, limit)
}

// writingProc waits until one of procs is inside a writing transaction and
// returns it, or nil after limit.
func (h *harness) writingProc(procs []*proc, limit time.Duration) *proc {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		var name string
		err := h.conn.QueryRow(context.Background(), `SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1 AND backend_xid IS NOT NULL LIMIT 1`, h.appName()+"-%").Scan(&name)
		if err != nil {
			continue
		}
		for _, p := range procs {
			if name == h.appName()+"-"+p.name {
				return p
			}
		}
	}
	return nil
}

// waitWriting waits until whether a connection whose application_name is
// LIKE pattern is inside a writing transaction equals want. It looks at
// least once, so a limit of 0 is a plain check.
func (h *harness) waitWriting(pattern string, want bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := h.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 AND backend_xid IS NOT NULL`, pattern).Scan(&n)
		if err == nil && (n > 0) == want {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// pause SIGSTOPs p at a moment when one of its sessions is inside a
// writing transaction (inTx) or none is. Its pipelined commit opens and ends
// transactions on its own, so pause looks again once p is stopped, and
// resumes it and retries if the moment was the wrong one.
func (h *harness) pause(p *proc, inTx bool) {
	h.t.Helper()
	pattern := h.appName() + "-" + p.name
	for range 50 {
		h.waitWriting(pattern, inTx, 5*time.Second)
		p.signal(h.t, syscall.SIGSTOP)
		time.Sleep(50 * time.Millisecond) // a statement already sent finishes
		if h.waitWriting(pattern, inTx, 0) {
			return
		}
		p.signal(h.t, syscall.SIGCONT)
		time.Sleep(time.Duration(10+rand.IntN(100)) * time.Millisecond)
	}
	h.t.Fatalf("could not pause %s (inside a transaction: %v) in 50 tries", p.name, inTx)
}

// waitCaughtUp waits for the producer to finish and the stored offsets to
// reach the end of every partition.
func (h *harness) waitCaughtUp(s *stream, limit time.Duration) {
	h.t.Helper()
	<-s.done
	if s.err != nil {
		h.t.Fatalf("producing: %v", s.err)
	}
	want := map[string]int64{}
	for topic, ends := range s.ends {
		for _, end := range ends {
			want[topic] += end
		}
	}
	deadline := time.Now().Add(limit)
	for {
		got := h.committed()
		if got["user_events"] == want["user_events"] && got["org_events"] == want["org_events"] {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("stored offsets did not reach the end within %s: got %v, want %v", limit, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// figures are what the end checks measured.
type figures struct {
	Test            string `json:"test"`
	Date            string `json:"date"`
	Events          int    `json:"records_produced"`
	InvalidRecords  int    `json:"invalid_records"`
	Kills           int    `json:"sigkills"`
	KillsInCommit   int    `json:"sigkills_inside_commit"`
	Restarts        int    `json:"restarts"`
	UserMismatches  int    `json:"user_rows_differing"`
	OrgMismatches   int    `json:"org_rows_differing"`
	RawLost         int    `json:"raw_records_lost"`
	RawDuplicated   int    `json:"raw_records_duplicated"`
	RawInvalid      int    `json:"raw_rows_of_invalid_records"`
	DLQLost         int    `json:"dead_letters_lost"`
	DLQDuplicated   int    `json:"dead_letters_duplicated"`
	DLQUnexpected   int    `json:"dead_letters_unexpected"`
	ZombieFenced    int    `json:"zombie_batches_fenced"`
	DurationSeconds int    `json:"duration_seconds"`
}

// check compares PostgreSQL and the dead-letter topics with the stream and
// fails the test on any difference, except duplicated dead letters when
// dlqDuplicatesAllowed. It fills the correctness figures of f.
func (h *harness) check(s *stream, f *figures, dlqDuplicatesAllowed bool) {
	h.t.Helper()
	ctx := context.Background()
	f.Date = time.Now().UTC().Format(time.RFC3339)
	for _, topic := range h.topics {
		f.Events += s.valid[topic] + len(s.invalid[topic])
		f.InvalidRecords += len(s.invalid[topic])
	}

	// users and organizations equal the oracle.
	got := map[string]workload.UserState{}
	rows, _ := h.conn.Query(ctx, "SELECT id, deleted, event_type, received_at, coalesce(username, ''), coalesce(user_email, ''), coalesce(user_type, ''), coalesce(organization_name, '') FROM "+h.schema+".users")
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
	f.UserMismatches += max(0, len(got)-len(s.want.Users))
	gotOrgs := map[string]string{}
	rows, _ = h.conn.Query(ctx, "SELECT organization_name, organization_tier FROM "+h.schema+".organizations")
	var name, tier string
	if _, err := pgx.ForEachRow(rows, []any{&name, &tier}, func() error { gotOrgs[name] = tier; return nil }); err != nil {
		h.t.Fatal(err)
	}
	for name, w := range s.want.Orgs {
		if gotOrgs[name] != w {
			if f.OrgMismatches < 5 {
				h.t.Errorf("organization %s tier = %q, want %q", name, gotOrgs[name], w)
			}
			f.OrgMismatches++
		}
	}
	f.OrgMismatches += max(0, len(gotOrgs)-len(s.want.Orgs))

	// Each raw log holds exactly one row per valid record: no position
	// twice, none of an invalid record, and as many distinct positions as
	// valid records (every offset is below the end, so the set is right).
	for table, topic := range map[string]string{"user_events": "user_events", "org_events": "org_events"} {
		var ps []int32
		var os []int64
		for p := range s.invalid[topic] {
			ps, os = append(ps, p.partition), append(os, p.offset)
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
			if d.Headers[ingest.HeaderError] == "" || d.Headers[ingest.HeaderErrorCode] == "" || d.Headers[ingest.HeaderSourceTopic] != topic {
				h.t.Errorf("%s.dlq: record without its reason or source: %v", topic, d.Headers)
			}
			p, _ := strconv.ParseInt(d.Headers[ingest.HeaderSourcePartition], 10, 32)
			o, _ := strconv.ParseInt(d.Headers[ingest.HeaderSourceOffset], 10, 64)
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
	if f.DLQLost+f.DLQUnexpected > 0 || (f.DLQDuplicated > 0 && !dlqDuplicatesAllowed) {
		h.t.Errorf("dead letters: %d lost, %d duplicated, %d unexpected", f.DLQLost, f.DLQDuplicated, f.DLQUnexpected)
	}
}

type deadLetter struct {
	Headers map[string]string
	Value   []byte
}

// readDLQ reads a dead-letter topic from its start to its current end.
func (h *harness) readDLQ(topic string) []deadLetter {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(h.broker))
	if err != nil {
		h.t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		h.t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	if len(left) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		h.t.Fatal(err)
	}
	defer cl.Close()
	var out []deadLetter
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			h.t.Fatalf("reading %s: %v (partitions left: %v)", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			hs := map[string]string{}
			for _, kv := range r.Headers {
				hs[kv.Key] = string(kv.Value)
			}
			out = append(out, deadLetter{Headers: hs, Value: r.Value})
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return out
}

// finish checks the end state (check), stops procs with SIGTERM, each of
// which must exit 0, and reports f with the test's duration.
func (h *harness) finish(s *stream, f *figures, dlqDuplicatesAllowed bool, started time.Time, procs ...*proc) {
	h.t.Helper()
	h.check(s, f, dlqDuplicatesAllowed)
	for _, p := range procs {
		p.stop(h.t, 20*time.Second)
	}
	f.DurationSeconds = int(time.Since(started).Seconds())
	report(h.t, *f)
}

// report appends f to the -chaos.report file, if one was named.
func report(t *testing.T, f figures) {
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

// get fetches url and returns the status, content type and body.
func get(url string, timeout time.Duration) (int, string, []byte, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, err
}

// metric reads one sample of the process's /metrics, or -1.
func (p *proc) metric(name string, labels ...string) float64 {
	_, _, body, err := get(p.base+"/metrics", 5*time.Second)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			return v
		}
	}
	return 0
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

// streamConfig is the chaos stream: n user events keyed by time, 1%
// duplicates, 1% invalid, 5% out of order.
func streamConfig(n int, seed uint64) workload.Config {
	return workload.Config{Users: max(10, n/10), Orgs: max(5, n/100), Events: n, OrgEvents: n / 50,
		OutOfOrder: 0.05, Duplicates: 0.01, Invalid: 0.01, KeyBy: "time", Seed: seed}
}
