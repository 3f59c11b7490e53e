package bench

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/workload"
)

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
