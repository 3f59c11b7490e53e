package bench

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// bencher holds what every measurement shares.
type bencher struct {
	cfg      Config
	dsn      string
	log      *slog.Logger
	quiet    *slog.Logger // for the stores it opens: migrations are not news
	progress func(string)
	data     *dataset
	// commitWait bounds steady's wait for its last records to commit.
	commitWait time.Duration
	// token is the bearer token of tokenFile, the --api-token-file of
	// every streamjoin process the bench starts; its API loads send it.
	token, tokenFile string
}

func (b *bencher) conn(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, b.dsn)
}

// run is one repetition of every throughput measurement, in order.
func (b *bencher) run(ctx context.Context, run int) (RunResult, error) {
	var r RunResult
	steps := []struct {
		name string
		fn   func(context.Context, int, *RunResult) error
	}{
		{"(a) raw COPY into an unindexed table", b.rawCopy},
		{"(b) store write path, no Kafka", b.storePath},
		{"(a2) the same work, minimum SQL and Go", b.minimum},
		{"(d) per-event upsert loop (the seed's approach)", b.seedLoop},
		{"(c) end-to-end pipeline, changelog off", b.pipelineOff},
		{"(c+) end-to-end pipeline with the changelog, then freshness, changelog latency and API", b.pipeline},
		{"fan-out of a tier change to the changelog", b.fanout},
		{"(c++) end-to-end pipeline with every output, then the as-of join's emission delay", b.pipelineOutputs},
		{"a burst of as-of join corrections", b.correctionBurst},
	}
	for _, s := range steps {
		b.progress(fmt.Sprintf("run %d/%d: %s", run, b.cfg.Runs, s.name))
		if err := s.fn(ctx, run, &r); err != nil {
			return r, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	// (a2) and (c) are compared with (b) as the same work: check they did it.
	for _, c := range []struct{ name, got string }{{"(a2)", r.minimumDigest}, {"(c)", r.pipelineDigest}, {"(c+)", r.changelogDigest}, {"(c++)", r.outputsDigest}} {
		if c.got != r.storeDigest {
			return r, fmt.Errorf("%s left a different state from (b)'s:\n  %s\n  %s", c.name, c.got, r.storeDigest)
		}
	}
	return r, nil
}
