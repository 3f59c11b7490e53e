// Package bench is `streamjoin bench`: it measures streamjoin beside its
// limits and baselines, in one invocation, against the same PostgreSQL and
// the same generated data, and reports throughput, freshness, memory and API
// latency with their targets.
//
// Run blocks until every measurement is done. It starts what it needs: a
// private PostgreSQL (unless Config.Postgres names one), an in-process kfake
// broker per pipeline run, and the streamjoin binary as a subprocess for the
// end-to-end pipeline and the API.
package bench

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// Config sets the scale of a benchmark run. Zero fields take defaults.
type Config struct {
	// Workload is the generated dataset (default: 100,000 users, 10,000
	// organizations, 1,000,000 events, 5% out of order, 1% duplicates,
	// 0.5% invalid, keyed by time).
	Workload workload.Config
	// Runs repeats the throughput, freshness and API measurements; the
	// report gives the median and the spread. Default 3.
	Runs int
	// Writers is the pipeline's --writers, and the store path's parallel
	// writers. Default ingest.DefaultWriters.
	Writers int
	// BatchSize is the pipeline's --max-poll-records and the store path's
	// batch size. Default 10000 (ingest.DefaultMaxPollRecords).
	BatchSize int
	// MinimumBatch is how many events each connection of the minimum
	// baseline (a2) writes per transaction. Default 5,000: the pipeline's
	// default poll of 10,000 records split between its 2 writers.
	MinimumBatch int
	// SeedSample is how many events the per-event upsert loop (d) gets.
	// Default 20,000.
	SeedSample int
	// FreshRate and FreshDuration set the steady stream of the freshness
	// and API-under-ingest measurements. Defaults 20,000 events/s, 20s.
	FreshRate     int
	FreshDuration time.Duration
	// APIConns and APIDuration set each API load test. Defaults 50, 10s.
	APIConns    int
	APIDuration time.Duration
	// FanoutUsers is the number of users of the organization whose tier
	// change the fan-out measurement times. Default 100,000.
	FanoutUsers int
	// RSSEvents is the size of the separate run whose peak RSS is reported
	// (0: skip it). Default 5,000,000.
	RSSEvents int
	// Binary is the streamjoin executable to run the pipeline with.
	// Default: this process's own executable.
	Binary string
	// Postgres is a DSN to benchmark against; empty starts a private,
	// durable (fsync on) cluster in DataDir.
	Postgres string
	// DataDir holds the private cluster. Default: a temporary directory.
	DataDir string
	// Out is where the report is written as JSON and Markdown. Empty: not
	// written.
	Out string
	// PipelineDebugAddr, if set, is passed to each streamjoin process the
	// bench starts (the pipeline, or with Only "api" the API) as
	// --debug-addr, to profile it while the benchmark runs.
	PipelineDebugAddr string
	// Only limits the run to one part: "api" writes the dataset through
	// the store path (no Kafka, no pipeline) and runs only the API's load
	// tests, against `streamjoin run --role api`. Empty: everything.
	Only string
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	c.Workload = c.Workload.WithDefaults()
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Runs, 3)
	def(&c.Writers, ingest.DefaultWriters)
	def(&c.BatchSize, ingest.DefaultMaxPollRecords)
	def(&c.MinimumBatch, 5_000)
	def(&c.SeedSample, 20_000)
	def(&c.FreshRate, 20_000)
	def(&c.APIConns, 50)
	def(&c.FanoutUsers, 100_000)
	if c.FreshDuration == 0 {
		c.FreshDuration = 20 * time.Second
	}
	if c.APIDuration == 0 {
		c.APIDuration = 10 * time.Second
	}
	return c
}

// Validate names the first bad setting by its flag.
func (c Config) Validate() error {
	if err := c.Workload.Validate(); err != nil {
		return err
	}
	switch {
	case c.Runs < 1:
		return fmt.Errorf("runs %d: must be at least 1", c.Runs)
	case c.Writers < 1:
		return fmt.Errorf("writers %d: must be at least 1", c.Writers)
	case c.BatchSize < 1:
		return fmt.Errorf("batch-size %d: must be at least 1", c.BatchSize)
	case c.MinimumBatch < 1:
		return fmt.Errorf("minimum-batch %d: must be at least 1", c.MinimumBatch)
	case c.SeedSample < 1:
		return fmt.Errorf("seed-sample %d: must be at least 1", c.SeedSample)
	case c.FreshRate < 100:
		return fmt.Errorf("fresh-rate %d: must be at least 100", c.FreshRate)
	case c.FreshDuration < time.Second:
		return fmt.Errorf("fresh-duration %s: must be at least 1s", c.FreshDuration)
	case c.APIConns < 1:
		return fmt.Errorf("api-conns %d: must be at least 1", c.APIConns)
	case c.APIDuration < time.Second:
		return fmt.Errorf("api-duration %s: must be at least 1s", c.APIDuration)
	case c.FanoutUsers < 1:
		return fmt.Errorf("fanout-users %d: must be at least 1", c.FanoutUsers)
	case c.RSSEvents < 0:
		return fmt.Errorf("rss-events %d: must not be negative", c.RSSEvents)
	case c.Only != "" && c.Only != "api":
		return fmt.Errorf("only %q: want api, or nothing for every measurement", c.Only)
	}
	return nil
}

//go:embed sql/*.sql
var sqlFS embed.FS

func query(name string) string {
	b, err := sqlFS.ReadFile("sql/" + name + ".sql")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return string(b)
}

var (
	sqlRawTable   = query("raw_table")
	sqlSeedInsert = query("seed_insert")
	sqlSeedUpsert = query("seed_upsert")
)

// Run measures everything cfg asks for and returns the report. progress, if
// not nil, gets a line per step.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, progress func(string)) (*Report, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = func(string) {}
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the streamjoin binary: %w", err)
		}
		cfg.Binary = exe
	}
	dsn := cfg.Postgres
	if dsn == "" {
		dir := cfg.DataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "streamjoin-bench-")
			if err != nil {
				return nil, err
			}
			_ = os.Chmod(tmp, 0o755) // the postgres user must reach it when run as root
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		progress("starting a private PostgreSQL (fsync on)")
		pg, err := devenv.StartPostgres(ctx, devenv.PostgresConfig{Dir: filepath.Join(dir, "pg")}, logger)
		if err != nil {
			return nil, err
		}
		defer pg.Stop()
		dsn = pg.DSN
	}
	b := &bencher{cfg: cfg, dsn: dsn, log: logger, quiet: slog.New(slog.DiscardHandler), progress: progress, commitWait: defaultCommitWait}
	tokenDir, err := os.MkdirTemp("", "streamjoin-bench-token-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tokenDir)
	if b.token, b.tokenFile, err = writeTokenFile(tokenDir); err != nil {
		return nil, err
	}

	progress(fmt.Sprintf("generating %d events", cfg.Workload.Events))
	data, err := generate(cfg.Workload)
	if err != nil {
		return nil, err
	}
	b.data = data
	rep := &Report{Started: time.Now().UTC(), Config: describe(cfg), Machine: machine(), Only: cfg.Only}
	runOne := b.run
	if cfg.Only == "api" {
		runOne = b.apiOnly
	}
	for run := 1; run <= cfg.Runs; run++ {
		r, err := runOne(ctx, run)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", run, err)
		}
		rep.Runs = append(rep.Runs, r)
	}
	if cfg.RSSEvents > 0 && cfg.Only == "" {
		progress(fmt.Sprintf("peak RSS over %d events", cfg.RSSEvents))
		rss, secs, err := b.rssRun(ctx)
		if err != nil {
			return nil, fmt.Errorf("memory run: %w", err)
		}
		rep.RSSEvents, rep.RSSBytes, rep.RSSSeconds = cfg.RSSEvents, rss, secs
	}
	rep.Finished = time.Now().UTC()
	rep.summarize()
	if cfg.Out != "" {
		if err := rep.write(cfg.Out); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

var errNotCaughtUp = errors.New("the pipeline did not catch up")
