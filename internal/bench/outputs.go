package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/store"
)

// pipelineOutputs is (c++): the pipeline with every output on (the
// default: the changelog, the as-of join, the organization activity),
// timed until every offset is committed and the outbox produced; then the
// as-of join's emission delay beyond the organization watermark at the
// steady rate.
func (b *bencher) pipelineOutputs(ctx context.Context, run int, r *RunResult) error {
	d, err := b.drain(ctx, fmt.Sprintf("bench_out_%d", run), allOutputs)
	if err != nil {
		return err
	}
	defer d.close(ctx)
	r.PipelineOutputs, r.outputsDigest = d.rate, d.digest

	b.progress("  the as-of join's emission delay at a steady rate")
	// A connection of its own: steady polls the offsets on d.conn, and a
	// pgx.Conn serves one goroutine.
	wconn, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer wconn.Close(ctx)
	// enriched_frontier reads the schema's tables by search_path.
	if _, err := wconn.Exec(ctx, "SET search_path = "+pgx.Identifier{d.schema}.Sanitize()); err != nil {
		return err
	}
	ew, err := watchEnriched(ctx, d.kb.kafka, wconn)
	if err != nil {
		return err
	}
	sent := newSentTimes()
	if _, err := b.steadyWith(ctx, d.kb.kafka, d.conn, d.schema, run+2000, b.cfg.FreshDuration, nil, sent.add); err != nil {
		ew.stop()
		// A pipeline that does not keep up has no emission delay to
		// speak of: the backlog is the figure, and the run goes on.
		var behind *uncommittedError
		if errors.As(err, &behind) {
			b.progress(fmt.Sprintf("  the pipeline did not keep up: %v", err))
			r.EmitBacklog = float64(behind.left) / float64(behind.produced)
			return nil
		}
		return fmt.Errorf("emission delay: %w", err)
	}
	// Every event of the stream out: none pending (the organization
	// partitions go idle after the stream), and the outbox produced.
	if err := waitTableEmpty(ctx, d.conn, d.schema, "enriched_pending", d.p.done, time.Minute); err != nil {
		ew.stop()
		return fmt.Errorf("emission delay: %w", err)
	}
	if err := waitOutboxEmpty(ctx, d.conn, d.schema, d.p.done, time.Minute); err != nil {
		ew.stop()
		return fmt.Errorf("emission delay: %w", err)
	}
	// The relay has produced everything; give the reader the time to see
	// it, bounded.
	ew.waitSeen(sent, 30*time.Second)
	delays, unpassed, err := ew.stop().delays(sent)
	if err != nil {
		return fmt.Errorf("emission delay: %w", err)
	}
	r.EmitCount, r.EmitUnpassed = len(delays), unpassed
	r.EmitP50, r.EmitP99 = percentile(delays, 50), percentile(delays, 99)
	return nil
}

// sentTimes keeps when each user event of the steady stream was produced,
// by its enriched key. It is goroutine-safe.
type sentTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func newSentTimes() *sentTimes { return &sentTimes{at: map[string]time.Time{}} }

func (s *sentTimes) add(topic string, part int32, offset int64, at time.Time) {
	if topic != userTopic {
		return
	}
	s.mu.Lock()
	s.at[changelog.EnrichedKey(topic, part, offset)] = at
	s.mu.Unlock()
}

// enrichedWatch reads the enriched topic read_committed from its end and
// keeps each first answer's event time and when it was seen, while
// sampling the emission frontier (the organization watermark, unbounded
// while the organization topic is idle) every 5ms, to tell how long after
// the frontier passed an event (or, if it was already past, after the
// event was produced) its answer reached a consumer.
type enrichedWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	seen   []seenAnswer
	marks  []watermarkSample // in time order
	err    error
}

type seenAnswer struct {
	key        string
	receivedAt time.Time
	at         time.Time
}

type watermarkSample struct {
	at, watermark time.Time
}

// watchEnriched starts an enrichedWatch, which samples on conn, whose
// search_path must be the pipeline's schema (and nothing else may use conn
// until stop returns); stop ends it.
func watchEnriched(ctx context.Context, kc *kafka.Connector, conn *pgx.Conn) (*enrichedWatch, error) {
	cl, err := kc.NewClient("bench-enriched-reader",
		kgo.ConsumeTopics(changelog.DefaultEnrichedTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return nil, err
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	w := &enrichedWatch{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer cl.Close()
		for rctx.Err() == nil {
			fs := cl.PollFetches(rctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == changelog.HeaderCorrection {
						return // only first answers are timed
					}
				}
				var v struct {
					ReceivedAt time.Time `json:"received_at"`
				}
				w.mu.Lock()
				defer w.mu.Unlock()
				if err := json.Unmarshal(r.Value, &v); err != nil {
					w.err = fmt.Errorf("enriched record %s: %w", r.Key, err)
					return
				}
				w.seen = append(w.seen, seenAnswer{key: string(r.Key), receivedAt: v.ReceivedAt, at: now})
			})
		}
	}()
	go func() {
		defer wg.Done()
		// The emission frontier: the organization watermark, or no bound
		// while the organization topic is idle (enriched_frontier).
		q := "SELECT enriched_frontier('" + orgTopic + "', false)"
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
			}
			var wm pgtype.Timestamptz
			if err := conn.QueryRow(rctx, q).Scan(&wm); err != nil {
				continue // a failed read: the next sample decides
			}
			frontier := wm.Time
			switch wm.InfinityModifier {
			case pgtype.Infinity:
				frontier = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			case pgtype.NegativeInfinity:
				continue // no watermark yet
			}
			w.mu.Lock()
			w.marks = append(w.marks, watermarkSample{at: time.Now(), watermark: frontier})
			w.mu.Unlock()
		}
	}()
	go func() { wg.Wait(); close(w.done) }()
	return w, nil
}

// waitSeen waits, up to limit, until every event of sent has a first
// answer seen.
func (w *enrichedWatch) waitSeen(sent *sentTimes, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		sent.mu.Lock()
		want := len(sent.at)
		sent.mu.Unlock()
		w.mu.Lock()
		got := 0
		for _, s := range w.seen {
			sent.mu.Lock()
			if _, ok := sent.at[s.key]; ok {
				got++
			}
			sent.mu.Unlock()
		}
		w.mu.Unlock()
		if got >= want {
			return
		}
	}
}

// stop ends the watch.
func (w *enrichedWatch) stop() *enrichedWatch {
	w.cancel()
	<-w.done
	return w
}

// delays returns, sorted, for each first answer seen whose event sent
// produced, the ms from the later of its produce and the first frontier
// sample at or past its event time to its being seen; and how many it
// left out because no sample passed them before they were seen (the 5ms
// sampling missed the moment).
func (w *enrichedWatch) delays(sent *sentTimes) ([]float64, int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, 0, w.err
	}
	sent.mu.Lock()
	defer sent.mu.Unlock()
	var out []float64
	unpassed := 0
	for _, s := range w.seen {
		produced, ok := sent.at[s.key]
		if !ok {
			continue // an event of the drain before, released now
		}
		// The frontier only moves forward: the first sample at or past
		// the event's time is when it let the event go.
		i := sort.Search(len(w.marks), func(i int) bool { return !w.marks[i].watermark.Before(s.receivedAt) })
		if i == len(w.marks) || w.marks[i].at.After(s.at) {
			unpassed++
			continue
		}
		from := w.marks[i].at
		if produced.After(from) {
			from = produced
		}
		out = append(out, float64(s.at.Sub(from).Microseconds())/1000)
	}
	if len(out) == 0 {
		first, last := "none", "none"
		if len(w.marks) > 0 {
			first, last = w.marks[0].watermark.String(), w.marks[len(w.marks)-1].watermark.String()
		}
		ex := "none"
		if len(w.seen) > 0 {
			ex = w.seen[0].key + " " + w.seen[0].receivedAt.String()
		}
		return nil, unpassed, fmt.Errorf("no first answer of the steady stream was seen after the frontier passed it (%d answers seen, %d produced, %d left out; frontier samples %d, from %s to %s; e.g. %s)", len(w.seen), len(sent.at), unpassed, len(w.marks), first, last, ex)
	}
	sort.Float64s(out)
	return out, unpassed, nil
}

// correctionBurst measures a burst of corrections: an organization with
// FanoutUsers events already emitted (eagerly) receives a version older
// than all of them, which re-emits every one. It reports the correcting
// transaction, the time until the relay has produced every correction, and
// the stall of a concurrent stream of small log writes (another
// organization), which the version's exclusive lock holds back.
func (b *bencher) correctionBurst(ctx context.Context, run int, r *RunResult) error {
	schema := fmt.Sprintf("bench_corr_%d", run)
	if err := b.dropSchema(ctx, schema); err != nil {
		return err
	}
	defer b.dropSchema(ctx, schema)
	st, err := store.Open(ctx, store.Config{DSN: b.dsn, Schema: schema, MaxConns: 8, Enriched: true, EnrichedEager: true}, b.quiet)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	const burstOrg = "burst-org"
	t0 := b.cfg.Workload.Start
	str := func(s string) *string { return &s }
	n := b.cfg.FanoutUsers
	for lo := 0; lo < n; lo += 10_000 {
		bt := &store.Batch{UserTopic: userTopic, OrgTopic: orgTopic}
		for i := lo; i < min(n, lo+10_000); i++ {
			at := t0.Add(time.Duration(i+1) * time.Millisecond)
			bt.Users = append(bt.Users, event.User{ID: fmt.Sprint("burst-", i), Type: event.UserCreated, Username: str(fmt.Sprint("burst", i)),
				OrganizationName: str(burstOrg), ReceivedAt: at, LogTime: at, Pos: event.Position{Partition: 0, Offset: int64(i)}})
		}
		if err := st.WriteLog(ctx, bt); err != nil {
			return fmt.Errorf("loading the organization's events: %w", err)
		}
	}
	conn, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("TRUNCATE %[1]s.changelog_outbox, %[1]s.changelog_commits", schema)); err != nil {
		return err
	}
	kb, err := newBroker(b.log)
	if err != nil {
		return err
	}
	defer kb.close()
	relay, err := changelog.New(changelog.Config{EnrichedTopic: changelog.DefaultEnrichedTopic, SourceTopic: userTopic, CreateTopic: true}, kb.kafka, st, nil, b.quiet)
	if err != nil {
		return err
	}
	rctx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(rctx) }()
	defer func() { stopRelay(); <-relayDone }()

	spans, err := concurrentWrites(ctx, func(i int) error {
		bt := &store.Batch{UserTopic: userTopic, OrgTopic: orgTopic}
		for j := range 100 {
			at := t0.Add(time.Duration(i+1) * time.Millisecond)
			bt.Users = append(bt.Users, event.User{ID: fmt.Sprint("other-", j), Type: event.UserUpdated, Username: str("other"),
				OrganizationName: str("other-org"), ReceivedAt: at, LogTime: at, Pos: event.Position{Partition: 1, Offset: int64(i*100 + j)}})
		}
		return st.WriteLog(ctx, bt)
	}, func() (time.Time, time.Time, error) {
		start := time.Now()
		err := st.WriteLog(ctx, &store.Batch{UserTopic: userTopic, OrgTopic: orgTopic,
			Orgs: []event.Org{{Name: burstOrg, Tier: str("gold"), CreatedAt: t0, LogTime: t0, Pos: event.Position{Partition: 0, Offset: 0}}}})
		return start, time.Now(), err
	})
	if err != nil {
		return fmt.Errorf("correction burst: %w", err)
	}
	// With the concurrent stream stopped (its own rows would keep the
	// outbox from ever being empty under a slow relay), until everything
	// is produced.
	if err := waitOutboxEmpty(ctx, conn, schema, nil, 5*time.Minute); err != nil {
		return fmt.Errorf("correction burst: %w", err)
	}
	r.CorrRelayed = spans.sinceStart()
	if _, corrections := st.EnrichedCounts(); corrections != int64(n) {
		return fmt.Errorf("correction burst: %d corrections, want %d", corrections, n)
	}
	r.CorrTxn, r.CorrStall, r.CorrWriteP50 = spans.txn, spans.stall, spans.beforeP50
	return nil
}

// writeSpans is what concurrentWrites measured.
type writeSpans struct {
	start     time.Time // of the measured write
	txn       float64   // s, the measured write
	stall     float64   // ms, the longest concurrent write overlapping it
	beforeP50 float64   // ms, the concurrent writes' median before it
}

// sinceStart is the time since the measured write started, in s.
func (w writeSpans) sinceStart() float64 { return time.Since(w.start).Seconds() }

// concurrentWrites runs write(0), write(1), … back to back while, after a
// second of them, measured runs once and returns its start and end; then
// it reports the measured write's length, the longest concurrent write
// that overlapped it, and the concurrent writes' median before it.
func concurrentWrites(ctx context.Context, write func(i int) error, measured func() (time.Time, time.Time, error)) (writeSpans, error) {
	type span struct{ start, end time.Time }
	var (
		mu     sync.Mutex
		writes []span
	)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		for i := 0; wctx.Err() == nil; i++ {
			start := time.Now()
			if err := write(i); err != nil {
				if wctx.Err() != nil {
					break
				}
				done <- err
				return
			}
			mu.Lock()
			writes = append(writes, span{start, time.Now()})
			mu.Unlock()
		}
		done <- nil
	}()
	time.Sleep(time.Second) // the stream's own pace first
	start, end, err := measured()
	time.Sleep(200 * time.Millisecond) // a few writes after, so none is cut short
	stop()
	if werr := <-done; err == nil {
		err = werr
	}
	if err != nil {
		return writeSpans{}, err
	}
	var before []float64
	out := writeSpans{start: start, txn: end.Sub(start).Seconds()}
	mu.Lock()
	defer mu.Unlock()
	for _, w := range writes {
		d := w.end.Sub(w.start).Seconds() * 1000
		switch {
		case w.end.Before(start):
			before = append(before, d)
		case w.start.Before(end):
			out.stall = max(out.stall, d)
		}
	}
	if len(before) == 0 || out.stall == 0 {
		return writeSpans{}, errors.New("the concurrent writes did not overlap the measured one; no stall figure")
	}
	sort.Float64s(before)
	out.beforeP50 = percentile(before, 50)
	return out, nil
}
