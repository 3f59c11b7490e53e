package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/streamjoin/streamjoin/internal/workload"
)

// pipeline is (c), then freshness, then the API figures, all against one
// streamjoin process.
func (b *bencher) pipeline(ctx context.Context, run int, r *RunResult) error {
	schema := fmt.Sprintf("bench_c_%d", run)
	if err := b.dropSchema(ctx, schema); err != nil {
		return err
	}
	defer b.dropSchema(ctx, schema)
	kb, err := newBroker(b.log)
	if err != nil {
		return err
	}
	defer kb.close()
	i := 0
	want, err := produceAll(ctx, kb.kafka, func() (workload.Record, bool) {
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
	postmaster, err := postmasterPID(ctx, conn)
	if err != nil {
		b.progress(fmt.Sprintf("  no PostgreSQL CPU figure: %v", err))
	}

	spawned := time.Now()
	p, err := b.startPipeline(kb.addr, schema)
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
	cpu, err := startCPU(p.cmd.Process.Pid, postmaster)
	if err != nil {
		return err
	}
	if err := waitCommitted(ctx, conn, schema, want, p, 30*time.Minute); err != nil {
		return err
	}
	total := float64(want[userTopic] + want[orgTopic])
	r.Pipeline = total / time.Since(ready).Seconds()
	r.PipelineWall = total / time.Since(spawned).Seconds()
	if r.CPU, err = cpu.stop(); err != nil {
		return err
	}
	if r.pipelineDigest, err = b.digest(ctx, schema); err != nil {
		return err
	}

	b.progress("  freshness at a steady rate")
	lat, err := b.steady(ctx, kb.kafka, conn, schema, run, b.cfg.FreshDuration, nil)
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
	_, err = b.steady(ctx, kb.kafka, conn, schema, run+1000, b.cfg.APIDuration, func() {
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
