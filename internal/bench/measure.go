package bench

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/workload"
)

const (
	userTopic  = "user_events"
	orgTopic   = "org_events"
	partitions = 6
)

// dataset is the generated stream, as records for Kafka and decoded for the
// paths that skip Kafka.
type dataset struct {
	recs []workload.Record
	// items are the records in stream order, decoded, with the partition
	// and offset Kafka-like key hashing gives them.
	items []item
}

type item struct {
	kind  workload.Kind
	user  event.User
	org   event.Org
	valid bool
	pos   event.Position
}

func partitionOf(key []byte) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % partitions)
}

func generate(cfg workload.Config) (*dataset, error) {
	g, err := workload.New(cfg)
	if err != nil {
		return nil, err
	}
	d := &dataset{}
	dec := event.NewDecoder(0)
	var next [2][partitions]int64
	now := time.Now()
	for {
		r, ok := g.Next()
		if !ok {
			break
		}
		d.recs = append(d.recs, r)
		p := partitionOf(r.Key)
		it := item{kind: r.Kind, pos: event.Position{Partition: p, Offset: next[r.Kind][p]}}
		next[r.Kind][p]++
		if r.Kind == workload.UserEvent {
			it.user, err = dec.User(r.Value, it.pos)
			it.user.LogTime = now
		} else {
			it.org, err = dec.Org(r.Value, it.pos)
			it.org.LogTime = now
		}
		it.valid = err == nil
		d.items = append(d.items, it)
	}
	return d, nil
}

// bencher holds what every measurement shares.
type bencher struct {
	cfg      Config
	dsn      string
	log      *slog.Logger
	quiet    *slog.Logger // for the stores it opens: migrations are not news
	progress func(string)
	data     *dataset
}

func (b *bencher) conn(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, b.dsn)
}

// freshSchema creates an empty, migrated schema and returns a store on it.
func (b *bencher) freshSchema(ctx context.Context, name string, maxConns int) (*store.Store, error) {
	if err := b.dropSchema(ctx, name); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Config{DSN: b.dsn, Schema: name, MaxConns: int32(maxConns)}, b.quiet)
	if err != nil {
		return nil, err
	}
	if _, err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// schemaConn creates a fresh, migrated schema and returns a connection whose
// search_path is that schema; done closes it and drops the schema.
func (b *bencher) schemaConn(ctx context.Context, name string) (conn *pgx.Conn, done func(), err error) {
	st, err := b.freshSchema(ctx, name, 1)
	if err != nil {
		return nil, nil, err
	}
	st.Close()
	if conn, err = b.conn(ctx); err == nil {
		_, err = conn.Exec(ctx, "SET search_path = "+pgx.Identifier{name}.Sanitize())
	}
	done = func() {
		if conn != nil {
			conn.Close(ctx)
		}
		_ = b.dropSchema(ctx, name)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return conn, done, nil
}

func (b *bencher) dropSchema(ctx context.Context, name string) error {
	conn, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	return err
}

func (b *bencher) run(ctx context.Context, run int) (RunResult, error) {
	var r RunResult
	steps := []struct {
		name string
		fn   func(context.Context, int, *RunResult) error
	}{
		{"(a) raw COPY into an unindexed table", b.rawCopy},
		{"(b) store write path, no Kafka", b.storePath},
		{"(d) per-event upsert loop (the seed's approach)", b.seedLoop},
		{"(c) end-to-end pipeline, then freshness and API", b.pipeline},
	}
	for _, s := range steps {
		b.progress(fmt.Sprintf("run %d/%d: %s", run, b.cfg.Runs, s.name))
		if err := s.fn(ctx, run, &r); err != nil {
			return r, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return r, nil
}

// rawCopy is (a): COPY the valid user rows into a table without indexes.
func (b *bencher) rawCopy(ctx context.Context, run int, r *RunResult) error {
	conn, done, err := b.schemaConn(ctx, fmt.Sprintf("bench_a_%d", run))
	if err != nil {
		return err
	}
	defer done()
	if _, err := conn.Exec(ctx, sqlRawTable); err != nil {
		return fmt.Errorf("creating the raw table: %w", err)
	}
	var rows [][]any
	for i := range b.data.items {
		it := &b.data.items[i]
		if it.valid && it.kind == workload.UserEvent {
			u := &it.user
			rows = append(rows, []any{userTopic, u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.LogTime})
		}
	}
	cols := []string{"topic", "partition", "offset", "id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "kafka_timestamp"}
	start := time.Now()
	const chunk = 100_000
	for i := 0; i < len(rows); i += chunk {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"bench_raw_copy"}, cols, pgx.CopyFromRows(rows[i:min(i+chunk, len(rows))])); err != nil {
			return fmt.Errorf("copying: %w", err)
		}
	}
	r.RawCopy = float64(len(rows)) / time.Since(start).Seconds()
	return nil
}

// storePath is (b): the store's exactly-once write path fed directly, in
// batches of BatchSize records split among Writers, as the consumer does.
func (b *bencher) storePath(ctx context.Context, run int, r *RunResult) error {
	schema := fmt.Sprintf("bench_b_%d", run)
	st, err := b.freshSchema(ctx, schema, b.cfg.Writers+1)
	if err != nil {
		return err
	}
	defer st.Close()
	defer b.dropSchema(ctx, schema)
	var tps []store.TopicPartition
	for p := int32(0); p < partitions; p++ {
		tps = append(tps, store.TopicPartition{Topic: userTopic, Partition: p}, store.TopicPartition{Topic: orgTopic, Partition: p})
	}
	claims, err := st.ClaimOffsets(ctx, tps)
	if err != nil {
		return err
	}
	next := map[store.TopicPartition]*int64{}
	start := time.Now()
	items := b.data.items
	for i := 0; i < len(items); i += b.cfg.BatchSize {
		batch := &store.Batch{UserTopic: userTopic, OrgTopic: orgTopic}
		last := map[store.TopicPartition]int64{}
		for _, it := range items[i:min(i+b.cfg.BatchSize, len(items))] {
			topic := userTopic
			if it.kind == workload.OrgEvent {
				topic = orgTopic
			}
			last[store.TopicPartition{Topic: topic, Partition: it.pos.Partition}] = it.pos.Offset
			switch {
			case !it.valid:
			case it.kind == workload.UserEvent:
				batch.Users = append(batch.Users, it.user)
			default:
				batch.Orgs = append(batch.Orgs, it.org)
			}
		}
		for tp, off := range last {
			batch.Offsets = append(batch.Offsets, store.OffsetAdvance{Topic: tp.Topic, Partition: tp.Partition, Generation: claims[tp].Generation, From: next[tp], To: off + 1})
		}
		subs := batch.Split(b.cfg.Writers)
		errs := make([]error, len(subs))
		var wg sync.WaitGroup
		for j, sub := range subs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[j] = st.WriteBatch(ctx, sub) }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		for _, a := range batch.Offsets {
			to := a.To
			next[store.TopicPartition{Topic: a.Topic, Partition: a.Partition}] = &to
		}
	}
	r.StorePath = float64(len(items)) / time.Since(start).Seconds()
	return nil
}

// seedLoop is (d): one autocommitted insert and one upsert per event, the
// seed's approach, on a sample.
func (b *bencher) seedLoop(ctx context.Context, run int, r *RunResult) error {
	conn, done, err := b.schemaConn(ctx, fmt.Sprintf("bench_d_%d", run))
	if err != nil {
		return err
	}
	defer done()
	n := 0
	start := time.Now()
	for i := range b.data.items {
		it := &b.data.items[i]
		if !it.valid || it.kind != workload.UserEvent {
			continue
		}
		u := &it.user
		if _, err := conn.Exec(ctx, sqlSeedInsert, userTopic, u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.LogTime); err != nil {
			// A duplicate record has the same position in this dataset
			// only if it is the same record; the seed would fail too.
			continue
		}
		if _, err := conn.Exec(ctx, sqlSeedUpsert, u.ID, u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.Type == event.UserDeleted, u.Type.String(), u.Pos.Partition, u.Pos.Offset); err != nil {
			return fmt.Errorf("seed upsert: %w", err)
		}
		if n++; n >= b.cfg.SeedSample {
			break
		}
	}
	r.SeedLoop = float64(n) / time.Since(start).Seconds()
	return nil
}

// proc is a streamjoin process run by the benchmark.
type proc struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
}

func (b *bencher) startPipeline(broker, schema string) (*proc, error) {
	port, err := devenv.FreePort()
	if err != nil {
		return nil, err
	}
	p := &proc{base: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	p.cmd = exec.Command(b.cfg.Binary, "run",
		"--brokers", broker, "--postgres", b.dsn, "--schema", schema,
		"--http-addr", "127.0.0.1:"+strconv.Itoa(port),
		"--writers", strconv.Itoa(b.cfg.Writers), "--max-poll-records", strconv.Itoa(b.cfg.BatchSize),
		"--log-level", "warn")
	if b.cfg.PipelineDebugAddr != "" {
		p.cmd.Args = append(p.cmd.Args, "--debug-addr", b.cfg.PipelineDebugAddr)
	}
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", b.cfg.Binary, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop reads the process's peak RSS, sends SIGTERM, waits, and returns the
// peak RSS in bytes. The peak is VmHWM from /proc, the high-water mark of the
// process's own address space. (The rusage that wait returns is no good
// here: on Linux a child's ru_maxrss starts from the parent's RSS at fork,
// and this benchmark's own process holds the whole dataset.)
func (p *proc) stop() int64 {
	rss := vmHWM(p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return rss
}

// vmHWM returns a process's peak resident set size in bytes, or 0.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// waitReady waits until the process's /ready answers 200.
func (p *proc) waitReady(ctx context.Context, limit time.Duration) error {
	c := http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("the pipeline process exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := c.Get(p.base + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
	return fmt.Errorf("the pipeline was not ready within %s", limit)
}

// newBroker starts an in-process broker with the source topics.
func newBroker() (*kfake.Cluster, string, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, userTopic, orgTopic))
	if err != nil {
		return nil, "", err
	}
	return c, c.ListenAddrs()[0], nil
}

// produceAll produces records as fast as the broker takes them and returns
// how many went to each topic.
func produceAll(ctx context.Context, broker string, next func() (workload.Record, bool)) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	counts := map[string]int64{}
	var mu sync.Mutex
	var firstErr error
	for {
		r, ok := next()
		if !ok {
			break
		}
		topic := userTopic
		if r.Kind == workload.OrgEvent {
			topic = orgTopic
		}
		counts[topic]++
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	return counts, firstErr
}

// committed returns the sum of the stored next offsets per topic.
func committed(ctx context.Context, conn *pgx.Conn, schema string) (map[string]int64, error) {
	rows, err := conn.Query(ctx, "SELECT topic, coalesce(sum(next_offset), 0)::bigint FROM "+pgx.Identifier{schema, "kafka_offsets"}.Sanitize()+" GROUP BY topic")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var topic string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&topic, &n}, func() error { out[topic] = n; return nil })
	return out, err
}

// waitCommitted waits until the stored offsets cover want.
func waitCommitted(ctx context.Context, conn *pgx.Conn, schema string, want map[string]int64, p *proc, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("the pipeline process exited")
		default:
		}
		got, err := committed(ctx, conn, schema)
		if err != nil {
			continue
		}
		if got[userTopic] >= want[userTopic] && got[orgTopic] >= want[orgTopic] {
			return nil
		}
	}
	return errNotCaughtUp
}

// pipeline is (c), then freshness, then the API figures, all against one
// streamjoin process.
func (b *bencher) pipeline(ctx context.Context, run int, r *RunResult) error {
	schema := fmt.Sprintf("bench_c_%d", run)
	if err := b.dropSchema(ctx, schema); err != nil {
		return err
	}
	defer b.dropSchema(ctx, schema)
	kc, broker, err := newBroker()
	if err != nil {
		return err
	}
	defer kc.Close()
	i := 0
	want, err := produceAll(ctx, broker, func() (workload.Record, bool) {
		if i == len(b.data.recs) {
			return workload.Record{}, false
		}
		i++
		return b.data.recs[i-1], true
	})
	if err != nil {
		return fmt.Errorf("pre-filling kafka: %w", err)
	}
	conn, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)

	spawned := time.Now()
	p, err := b.startPipeline(broker, schema)
	if err != nil {
		return err
	}
	defer func() {
		if r.PipelineRSS == 0 {
			p.stop()
		}
	}()
	if err := p.waitReady(ctx, time.Minute); err != nil {
		return err
	}
	ready := time.Now()
	if err := waitCommitted(ctx, conn, schema, want, p, 30*time.Minute); err != nil {
		return err
	}
	total := float64(want[userTopic] + want[orgTopic])
	r.Pipeline = total / time.Since(ready).Seconds()
	r.PipelineWall = total / time.Since(spawned).Seconds()

	b.progress("  freshness at a steady rate")
	lat, err := b.steady(ctx, broker, conn, schema, run, b.cfg.FreshDuration, nil)
	if err != nil {
		return fmt.Errorf("freshness: %w", err)
	}
	r.FreshCount = len(lat)
	r.FreshP50, r.FreshP99 = percentile(lat, 50), percentile(lat, 99)

	b.progress("  API load, idle ingest")
	names := func(i int) string { return workload.Username(i % b.cfg.Workload.Users) }
	if r.API, err = loadHTTP(ctx, p.base+"/users/", names, b.cfg.APIConns, b.cfg.APIDuration); err != nil {
		return err
	}
	b.progress("  the same query through pgx directly")
	if r.DirectPgx, err = b.loadPgx(ctx, schema, names); err != nil {
		return err
	}
	b.progress("  a constant-JSON handler")
	if r.ConstJSON, err = loadConst(ctx, b.cfg.APIConns, b.cfg.APIDuration); err != nil {
		return err
	}
	b.progress("  API load while ingesting at the steady rate")
	var apiErr error
	_, err = b.steady(ctx, broker, conn, schema, run+1000, b.cfg.APIDuration, func() {
		r.APIUnderIngest, apiErr = loadHTTP(ctx, p.base+"/users/", names, b.cfg.APIConns, b.cfg.APIDuration)
	})
	if err != nil {
		return fmt.Errorf("ingest under API load: %w", err)
	}
	if apiErr != nil {
		return apiErr
	}
	r.PipelineRSS = p.stop()
	return nil
}

// steady produces a stream at FreshRate for d and returns, for each record,
// the time from its produce call to PostgreSQL's stored offset passing it
// (its commit, observed by polling every 2ms). during, if not nil, runs
// while the stream flows.
func (b *bencher) steady(ctx context.Context, broker string, conn *pgx.Conn, schema string, seed int, d time.Duration, during func()) ([]float64, error) {
	wl := b.cfg.Workload
	wl.Events = int(float64(b.cfg.FreshRate) * d.Seconds())
	wl.OrgEvents = wl.Events/100 + 1
	wl.Seed = uint64(seed)*7919 + 17
	wl.Start = wl.Start.AddDate(0, 0, seed+1)
	g, err := workload.New(wl)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	type sent struct {
		offset int64
		at     time.Time
	}
	var mu sync.Mutex
	pending := map[string]map[int32][]sent{userTopic: {}, orgTopic: {}}
	var lat []float64
	var produceErr error

	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { // the watcher
		defer close(watched)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
			case <-stop:
				return
			}
			rows, err := conn.Query(ctx, "SELECT topic, partition, coalesce(next_offset, 0) FROM "+pgx.Identifier{schema, "kafka_offsets"}.Sanitize())
			if err != nil {
				continue
			}
			now := time.Now()
			var topic string
			var part int32
			var next int64
			_, _ = pgx.ForEachRow(rows, []any{&topic, &part, &next}, func() error {
				mu.Lock()
				defer mu.Unlock()
				ps := pending[topic]
				if ps == nil {
					return nil
				}
				q := ps[part]
				k := 0
				for k < len(q) && q[k].offset < next {
					lat = append(lat, float64(now.Sub(q[k].at).Microseconds())/1000)
					k++
				}
				ps[part] = q[k:]
				return nil
			})
		}
	}()

	var duringDone chan struct{}
	if during != nil {
		duringDone = make(chan struct{})
		go func() { defer close(duringDone); during() }()
	}
	perTick := max(1, b.cfg.FreshRate/100)
	next := time.Now()
	for more := true; more; {
		for i := 0; i < perTick; i++ {
			rec, ok := g.Next()
			if !ok {
				more = false
				break
			}
			topic := userTopic
			if rec.Kind == workload.OrgEvent {
				topic = orgTopic
			}
			at := time.Now()
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}, func(kr *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					produceErr = err
					return
				}
				pending[kr.Topic][kr.Partition] = append(pending[kr.Topic][kr.Partition], sent{kr.Offset, at})
			})
		}
		next = next.Add(10 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	if duringDone != nil {
		<-duringDone
	}
	// Wait for the tail to be committed.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		left := 0
		for _, ps := range pending {
			for _, q := range ps {
				left += len(q)
			}
		}
		mu.Unlock()
		if left == 0 {
			break
		}
	}
	close(stop)
	<-watched
	mu.Lock()
	defer mu.Unlock()
	if produceErr != nil {
		return nil, produceErr
	}
	sort.Float64s(lat)
	return lat, nil
}

// rssRun runs the pipeline over RSSEvents events, in a process of its own,
// and returns its peak RSS and how long it took.
func (b *bencher) rssRun(ctx context.Context) (int64, float64, error) {
	const schema = "bench_rss"
	if err := b.dropSchema(ctx, schema); err != nil {
		return 0, 0, err
	}
	defer b.dropSchema(ctx, schema)
	kc, broker, err := newBroker()
	if err != nil {
		return 0, 0, err
	}
	defer kc.Close()
	wl := b.cfg.Workload
	wl.Events = b.cfg.RSSEvents
	wl.OrgEvents = 0 // the default for this size
	g, err := workload.New(wl)
	if err != nil {
		return 0, 0, err
	}
	want, err := produceAll(ctx, broker, g.Next)
	if err != nil {
		return 0, 0, fmt.Errorf("pre-filling kafka: %w", err)
	}
	conn, err := b.conn(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	start := time.Now()
	p, err := b.startPipeline(broker, schema)
	if err != nil {
		return 0, 0, err
	}
	if err := waitCommitted(ctx, conn, schema, want, p, time.Hour); err != nil {
		p.stop()
		return 0, 0, err
	}
	secs := time.Since(start).Seconds()
	return p.stop(), secs, nil
}
