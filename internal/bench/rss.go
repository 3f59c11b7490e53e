package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/streamjoin/streamjoin/internal/workload"
)

// rssRun runs the pipeline over RSSEvents events, in a process of its own,
// and returns its peak RSS and how long it took.
func (b *bencher) rssRun(ctx context.Context) (int64, float64, error) {
	const schema = "bench_rss"
	if err := b.dropSchema(ctx, schema); err != nil {
		return 0, 0, err
	}
	defer b.dropSchema(ctx, schema)
	kb, err := newBroker(b.log)
	if err != nil {
		return 0, 0, err
	}
	defer kb.close()
	wl := b.cfg.Workload
	wl.Events = b.cfg.RSSEvents
	wl.OrgEvents = 0 // the default for this size
	g, err := workload.New(wl)
	if err != nil {
		return 0, 0, err
	}
	want, err := produceAll(ctx, kb.kafka, g.Next)
	if err != nil {
		return 0, 0, fmt.Errorf("pre-filling kafka: %w", err)
	}
	conn, err := b.conn(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	start := time.Now()
	p, err := b.startPipeline(kb.addr, schema, allOutputs)
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
