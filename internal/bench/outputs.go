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
	"github.com/streamjoin/streamjoin/internal/kafka"
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
	if missing := ew.waitSeen(sent, 30*time.Second); missing > 0 {
		ew.stop()
		// Left out, they would flatter the figure: the slowest are missing.
		return fmt.Errorf("emission delay: %d first answers of the stream not seen 30s after the outbox was produced", missing)
	}
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
// answer seen, and returns how many have none.
func (w *enrichedWatch) waitSeen(sent *sentTimes, limit time.Duration) int {
	missing := 0
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
		if missing = want - got; missing <= 0 {
			return 0
		}
	}
	return missing
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
