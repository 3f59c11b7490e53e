package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
)

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
	conn, stopRelay, err := b.relayFromEmptyOutbox(ctx, st, schema, changelog.Config{EnrichedTopic: changelog.DefaultEnrichedTopic})
	if err != nil {
		return err
	}
	defer stopRelay()

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

// relayFromEmptyOutbox empties schema's outbox (what loaded the schema is
// not what is measured), starts a broker of its own and a relay with cfg
// (its source topic and topic creation set here) on st, and returns a
// connection to PostgreSQL and a stop that ends the relay, the broker and
// the connection. The caller calls stop, unless an error is returned.
func (b *bencher) relayFromEmptyOutbox(ctx context.Context, st *store.Store, schema string, cfg changelog.Config) (*pgx.Conn, func(), error) {
	conn, err := b.conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("TRUNCATE %[1]s.changelog_outbox, %[1]s.changelog_commits", schema)); err != nil {
		conn.Close(ctx)
		return nil, nil, err
	}
	kb, err := newBroker(b.log)
	if err != nil {
		conn.Close(ctx)
		return nil, nil, err
	}
	cfg.SourceTopic, cfg.CreateTopic = userTopic, true
	relay, err := changelog.New(cfg, kb.kafka, st, nil, b.quiet)
	if err != nil {
		kb.close()
		conn.Close(ctx)
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	return conn, func() {
		cancel()
		<-done
		kb.close()
		conn.Close(ctx)
	}, nil
}
