package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// defaultCommitWait is how long steady waits, after its last record is
// acknowledged, for the stored offsets to cover every record.
const defaultCommitWait = time.Minute

// steady produces a stream at FreshRate for d and returns, for each record,
// the time from its produce call to PostgreSQL's stored offset passing it
// (its commit, observed by polling every 2ms), sorted. during, if not nil,
// runs while the stream flows, and steady waits for it to return.
//
// Every record counts: if any is not committed within b.commitWait after the
// stream ends, steady fails rather than report the freshness of the others.
func (b *bencher) steady(ctx context.Context, kc *kafka.Connector, conn *pgx.Conn, schema string, seed int, d time.Duration, during func()) ([]float64, error) {
	return b.steadyWith(ctx, kc, conn, schema, seed, d, during, nil)
}

// steadyWith is steady that also calls onSent, if not nil, with each
// acknowledged record's topic, partition, offset and produce time.
func (b *bencher) steadyWith(ctx context.Context, kc *kafka.Connector, conn *pgx.Conn, schema string, seed int, d time.Duration, during func(), onSent func(topic string, part int32, offset int64, at time.Time)) ([]float64, error) {
	wl := b.cfg.Workload
	wl.Events = int(float64(b.cfg.FreshRate) * d.Seconds())
	wl.OrgEvents = wl.Events/100 + 1
	wl.Seed = uint64(seed)*7919 + 17
	wl.Start = wl.Start.AddDate(0, 0, seed+1)
	g, err := workload.New(wl)
	if err != nil {
		return nil, err
	}
	cl, err := kc.NewClient("bench-probe", kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	w := newCommitWatch()
	var failed firstError
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		w.poll(ctx, conn, schema, stop)
	}()
	var duringDone chan struct{}
	if during != nil {
		duringDone = make(chan struct{})
		go func() { defer close(duringDone); during() }()
	}

	produced := 0
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
			produced++
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}, func(kr *kgo.Record, err error) {
				if err != nil {
					failed.set(err)
					return
				}
				w.sent(kr.Topic, kr.Partition, kr.Offset, at)
				if onSent != nil {
					onSent(kr.Topic, kr.Partition, kr.Offset, at)
				}
			})
		}
		next = next.Add(10 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
	flushErr := cl.Flush(ctx)
	if duringDone != nil {
		<-duringDone
	}
	var left int
	if flushErr == nil && failed.get() == nil {
		left = w.waitAll(b.commitWait)
	}
	close(stop)
	<-watched
	switch {
	case flushErr != nil:
		return nil, fmt.Errorf("flushing: %w", flushErr)
	case failed.get() != nil:
		return nil, fmt.Errorf("producing: %w", failed.get())
	case left > 0:
		return nil, &uncommittedError{left: left, produced: produced, wait: b.commitWait}
	}
	lat := w.latencies()
	if len(lat) != produced {
		return nil, fmt.Errorf("%d records produced, %d seen committed", produced, len(lat))
	}
	return lat, nil
}

// commitWatch matches acknowledged records with the stored offsets that
// cover them. It is goroutine-safe.
type commitWatch struct {
	mu      sync.Mutex
	pending map[string]map[int32][]sentRecord // per topic and partition, in offset order
	lat     []float64                         // ms from produce call to commit
}

type sentRecord struct {
	offset int64
	at     time.Time
}

func newCommitWatch() *commitWatch {
	return &commitWatch{pending: map[string]map[int32][]sentRecord{userTopic: {}, orgTopic: {}}}
}

// sent records an acknowledged record, produced at at. Acknowledgements of
// one partition arrive in offset order.
func (w *commitWatch) sent(topic string, part int32, offset int64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[topic][part] = append(w.pending[topic][part], sentRecord{offset, at})
}

// committed takes the records of a partition below next as committed at now.
func (w *commitWatch) committed(topic string, part int32, next int64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ps := w.pending[topic]
	if ps == nil {
		return
	}
	q := ps[part]
	k := 0
	for k < len(q) && q[k].offset < next {
		w.lat = append(w.lat, float64(now.Sub(q[k].at).Microseconds())/1000)
		k++
	}
	ps[part] = q[k:]
}

func (w *commitWatch) left() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ps := range w.pending {
		for _, q := range ps {
			n += len(q)
		}
	}
	return n
}

// waitAll waits up to limit for every sent record to be committed and
// returns how many are not.
func (w *commitWatch) waitAll(limit time.Duration) int {
	for deadline := time.Now().Add(limit); ; time.Sleep(10 * time.Millisecond) {
		if n := w.left(); n == 0 || !time.Now().Before(deadline) {
			return n
		}
	}
}

// latencies returns the commit latencies seen so far, sorted.
func (w *commitWatch) latencies() []float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	lat := append([]float64(nil), w.lat...)
	sort.Float64s(lat)
	return lat
}

// poll reads the stored offsets every 2ms until stop is closed. A failed
// read is retried at the next tick: a record it would have seen committed
// is then seen late, or, if reads keep failing, not at all, which fails
// the measurement.
func (w *commitWatch) poll(ctx context.Context, conn *pgx.Conn, schema string, stop <-chan struct{}) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	q := "SELECT topic, partition, coalesce(next_offset, 0) FROM " + pgx.Identifier{schema, "kafka_offsets"}.Sanitize()
	for {
		select {
		case <-tick.C:
		case <-stop:
			return
		}
		rows, err := conn.Query(ctx, q)
		if err != nil {
			continue
		}
		now := time.Now()
		var topic string
		var part int32
		var next int64
		_, _ = pgx.ForEachRow(rows, []any{&topic, &part, &next}, func() error {
			w.committed(topic, part, next, now)
			return nil
		})
	}
}

// uncommittedError: the pipeline did not keep up with the steady stream.
type uncommittedError struct {
	left, produced int
	wait           time.Duration
}

func (e *uncommittedError) Error() string {
	return fmt.Sprintf("%d of %d records not committed within %s of the end of the stream", e.left, e.produced, e.wait)
}
