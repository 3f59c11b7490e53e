package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/bench"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// workloadFlags registers the generator's knobs.
func workloadFlags(fs *pflag.FlagSet, w *workload.Config) {
	fs.IntVar(&w.Users, "users", workload.DefaultUsers, "distinct users")
	fs.IntVar(&w.Orgs, "orgs", workload.DefaultOrgs, "distinct organizations")
	fs.IntVar(&w.Events, "events", workload.DefaultEvents, "user events, invalid and duplicate records included")
	fs.IntVar(&w.OrgEvents, "org-events", 0, "organization events (0: one per organization plus one per 100 user events)")
	fs.Float64Var(&w.OutOfOrder, "out-of-order", workload.DefaultOutOfOrder, "fraction of events that arrive after newer ones")
	fs.Float64Var(&w.Duplicates, "duplicates", workload.DefaultDuplicates, "fraction of records that repeat an earlier one")
	fs.Float64Var(&w.Invalid, "invalid", workload.DefaultInvalid, "fraction of records that are invalid")
	fs.StringVar(&w.KeyBy, "key-by", "time", "record key: time (as the seed does) or user")
	fs.Uint64Var(&w.Seed, "seed", 1, "random seed; the same seed gives the same stream")
}

func newBenchCmd() *cobra.Command {
	var cfg bench.Config
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput, freshness, memory and API latency beside their limits and baselines",
		Long: `bench generates one dataset and, against the same PostgreSQL, measures:
(a) raw COPY into an unindexed table, (a2) the same work as (b) and (c) in
the leanest SQL and Go (the schema's floor), (b) the store's write path fed
directly, (c) the end-to-end pipeline (this binary, as a subprocess) from a
pre-filled in-process Kafka topic, with the CPU each process used during it,
(d) a per-event upsert loop; then (c+) the pipeline with the changelog on,
freshness and the changelog's latency at a steady rate, the fan-out of a
tier change, the API at 50 connections beside direct pgx and a constant-JSON
handler, the API while ingesting, and the peak RSS over a larger run. It
prints a table and writes bench.json and bench.md to --out.`,
		Example: `  streamjoin bench --out bench-results
  streamjoin bench --events 200000 --runs 1 --rss-events 0   # a quick look
  streamjoin bench --only api --runs 3                        # the API's load tests alone`,
	}
	fs := cmd.Flags()
	workloadFlags(fs, &cfg.Workload)
	fs.IntVar(&cfg.Runs, "runs", 3, "repetitions; the table shows the median and the spread")
	fs.IntVar(&cfg.Writers, "writers", 2, "the pipeline's --writers")
	fs.IntVar(&cfg.BatchSize, "batch-size", 10000, "the pipeline's --max-poll-records, and the store path's batch")
	fs.IntVar(&cfg.MinimumBatch, "minimum-batch", 5_000, "events per transaction per connection of the minimum baseline (a2)")
	fs.IntVar(&cfg.SeedSample, "seed-sample", 20_000, "events for the per-event upsert loop")
	fs.IntVar(&cfg.FreshRate, "fresh-rate", 20_000, "events/s of the steady stream (freshness, API under ingest)")
	fs.DurationVar(&cfg.FreshDuration, "fresh-duration", 0, "length of the freshness stream (default 20s)")
	fs.IntVar(&cfg.APIConns, "api-conns", 50, "concurrent API connections")
	fs.DurationVar(&cfg.APIDuration, "api-duration", 0, "length of each API load test (default 10s)")
	fs.IntVar(&cfg.FanoutUsers, "fanout-users", 100_000, "users of the organization whose tier change the fan-out measurement times")
	fs.IntVar(&cfg.RSSEvents, "rss-events", 5_000_000, "events of the peak-RSS run (0: skip)")
	fs.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL DSN to use (default: a private cluster, fsync on)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "where the private cluster lives (default: a temporary directory)")
	fs.StringVar(&cfg.Out, "out", "bench-results", "directory for bench.json and bench.md (empty: don't write)")
	fs.StringVar(&cfg.Binary, "binary", "", "streamjoin binary for the pipeline (default: this one)")
	fs.StringVar(&cfg.PipelineDebugAddr, "pipeline-debug-addr", "", "pass --debug-addr to the streamjoin process (the pipeline, or with --only api the API), to profile it during the run")
	fs.StringVar(&cfg.Only, "only", "", "run one part only: api (the dataset written through the store path, no Kafka; then the API's load tests against run --role api) (default: everything)")
	withConfig(cmd, func() error { return cfg.WithDefaults().Validate() }, func(cmd *cobra.Command, logger *slog.Logger) error {
		out := cmd.OutOrStdout()
		rep, err := bench.Run(cmd.Context(), cfg, logger, func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), "bench:", s) })
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\n%s\n%s\n\n", rep.Machine, rep.Config)
		if err := rep.WriteTable(out); err != nil {
			return err
		}
		if cfg.Out != "" {
			fmt.Fprintf(out, "\nwritten to %s/bench.json and %s/bench.md\n", cfg.Out, cfg.Out)
		}
		return nil
	})
	return cmd
}
