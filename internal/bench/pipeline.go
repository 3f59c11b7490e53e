package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/workload"
)

// pipelineOff is (c) with every output off: the same work as (a2) and
// (b), timed from the process's readiness until every offset is committed.
func (b *bencher) pipelineOff(ctx context.Context, run int, r *RunResult) error {
	d, err := b.drain(ctx, fmt.Sprintf("bench_c_%d", run), outputs{})
	if err != nil {
		return err
	}
	defer d.close(ctx)
	r.Pipeline, r.PipelineWall, r.CPU, r.pipelineDigest = d.rate, d.wallRate, d.cpu, d.digest
	return nil
}

// drained is a pipeline process that has drained the pre-filled topics.
type drained struct {
	b              *bencher
	kb             *broker
	conn           *pgx.Conn
	p              *proc
	schema         string
	rate, wallRate float64
	cpu            *PipelineCPU
	digest         string
	rss            int64
}

func (d *drained) close(ctx context.Context) {
	if d.p != nil {
		d.rss = d.p.stop()
		d.p = nil
	}
	d.conn.Close(ctx)
	d.kb.close()
	d.b.dropSchema(ctx, d.schema)
}

// drain starts a broker pre-filled with the dataset and a pipeline process
// on schema, with the outputs outs, and times it from readiness until every
// offset is committed and, with an output on, every outbox row is
// produced. Enriched events still pending then (after the organization
// watermark, waiting for it or for the organization topic to go idle) are
// not waited for. The caller closes what it returns.
func (b *bencher) drain(ctx context.Context, schema string, outs outputs) (_ *drained, err error) {
	if err := b.dropSchema(ctx, schema); err != nil {
		return nil, err
	}
	kb, err := newBroker(b.log)
	if err != nil {
		return nil, err
	}
	d := &drained{b: b, kb: kb, schema: schema}
	defer func() {
		if err != nil {
			if d.conn != nil {
				d.close(ctx)
			} else {
				kb.close()
			}
		}
	}()
	i := 0
	want, err := produceAll(ctx, kb.kafka, func() (workload.Record, bool) {
		if i == len(b.data.recs) {
			return workload.Record{}, false
		}
		i++
		return b.data.recs[i-1], true
	})
	if err != nil {
		return nil, fmt.Errorf("pre-filling kafka: %w", err)
	}
	if d.conn, err = b.conn(ctx); err != nil {
		return nil, err
	}
	postmaster, err := postmasterPID(ctx, d.conn)
	if err != nil {
		b.progress(fmt.Sprintf("  no PostgreSQL CPU figure: %v", err))
	}
	spawned := time.Now()
	if d.p, err = b.startPipeline(kb.addr, schema, outs); err != nil {
		return nil, err
	}
	if err := d.p.waitReady(ctx, time.Minute); err != nil {
		return nil, err
	}
	ready := time.Now()
	cpu, err := startCPU(d.p.cmd.Process.Pid, postmaster)
	if err != nil {
		return nil, err
	}
	if err := waitCommitted(ctx, d.conn, schema, want, d.p, 30*time.Minute); err != nil {
		return nil, err
	}
	total := float64(want[userTopic] + want[orgTopic])
	if outs.changelog || outs.enriched {
		ingested := time.Since(ready)
		if err := waitOutboxEmpty(ctx, d.conn, schema, d.p.done, 30*time.Minute); err != nil {
			return nil, err
		}
		b.progress(fmt.Sprintf("  ingested in %.1fs (%.0f events/s), outbox produced %.1fs later", ingested.Seconds(), total/ingested.Seconds(), (time.Since(ready) - ingested).Seconds()))
	}
	d.rate = total / time.Since(ready).Seconds()
	d.wallRate = total / time.Since(spawned).Seconds()
	if d.cpu, err = cpu.stop(); err != nil {
		return nil, err
	}
	if d.digest, err = b.digest(ctx, schema); err != nil {
		return nil, err
	}
	return d, nil
}

// pipeline is (c+): the pipeline with the changelog on and the event-time
// outputs off, timed until the changelog is produced too; then freshness,
// the changelog's latency, and the API figures, all against that process.
func (b *bencher) pipeline(ctx context.Context, run int, r *RunResult) error {
	d, err := b.drain(ctx, fmt.Sprintf("bench_cl_%d", run), outputs{changelog: true})
	if err != nil {
		return err
	}
	defer d.close(ctx)
	r.PipelineChangelog, r.changelogDigest = d.rate, d.digest
	kb, conn, schema, p := d.kb, d.conn, d.schema, d.p

	b.progress("  freshness at a steady rate")
	cw, err := watchChangelog(ctx, kb.kafka)
	if err != nil {
		return err
	}
	lat, err := b.steady(ctx, kb.kafka, conn, schema, run, b.cfg.FreshDuration, nil)
	if err != nil {
		cw.stop()
		return fmt.Errorf("freshness: %w", err)
	}
	if err := waitOutboxEmpty(ctx, conn, schema, p.done, time.Minute); err != nil {
		cw.stop()
		return fmt.Errorf("changelog latency: %w", err)
	}
	cl, err := cw.stop()
	if err != nil {
		return fmt.Errorf("changelog latency: %w", err)
	}
	r.FreshCount = len(lat)
	r.FreshP50, r.FreshP99 = percentile(lat, 50), percentile(lat, 99)
	r.ChangelogCount = len(cl)
	r.ChangelogP50, r.ChangelogP99 = percentile(cl, 50), percentile(cl, 99)

	if err := b.apiLoads(ctx, p.base, schema, r); err != nil {
		return err
	}
	b.progress("  API load while ingesting at the steady rate")
	var apiErr error
	_, err = b.steady(ctx, kb.kafka, conn, schema, run+1000, b.cfg.APIDuration, func() {
		users := b.cfg.Workload.Users
		r.APIUnderIngest, apiErr = loadHTTP(ctx, p.base, b.token, func(rnd *rand.Rand) string {
			return "/users/" + url.PathEscape(workload.Username(rnd.IntN(users)))
		}, b.cfg.APIConns, b.cfg.APIDuration)
	})
	if err != nil {
		return fmt.Errorf("ingest under API load: %w", err)
	}
	if apiErr != nil {
		return apiErr
	}
	d.p = nil
	r.PipelineRSS = p.stop()
	return nil
}
