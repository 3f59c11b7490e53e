package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// RunResult is one run's raw figures.
type RunResult struct {
	RawCopy   float64 `json:"a_raw_copy_events_per_s"`
	Minimum   float64 `json:"a2_minimum_events_per_s"`
	StorePath float64 `json:"b_store_path_events_per_s"`
	Pipeline  float64 `json:"c_pipeline_events_per_s"`
	// PipelineChangelog is (c) with the changelog on, until it is produced.
	PipelineChangelog float64 `json:"c_changelog_events_per_s"`
	// PipelineOutputs is (c) with every output on (the default), until
	// the outbox is produced.
	PipelineOutputs float64 `json:"c_all_outputs_events_per_s"`
	// The as-of join's emission delay at the steady rate: from the later
	// of an event's produce and the organization watermark passing it, to
	// a read_committed consumer seeing its first answer.
	EmitCount    int     `json:"emit_delay_samples"`
	EmitUnpassed int     `json:"emit_delay_left_out"`
	EmitP50      float64 `json:"emit_delay_p50_ms"`
	EmitP99      float64 `json:"emit_delay_p99_ms"`
	// EmitBacklog is the share of the steady stream not committed a
	// minute after it ended, when (c++) did not keep up (0: it did).
	EmitBacklog float64 `json:"emit_steady_backlog_share"`
	// A burst of FanoutUsers corrections (correctionBurst).
	CorrTxn      float64 `json:"corrections_transaction_s"`
	CorrRelayed  float64 `json:"corrections_relayed_s"`
	CorrStall    float64 `json:"corrections_stall_ms"`
	CorrWriteP50 float64 `json:"corrections_concurrent_write_p50_ms"`
	PipelineWall float64 `json:"c_pipeline_with_startup_events_per_s"`
	SeedLoop     float64 `json:"d_seed_loop_events_per_s"`
	PipelineRSS  int64   `json:"c_pipeline_peak_rss_bytes"`
	FreshCount   int     `json:"freshness_samples"`
	FreshP50     float64 `json:"freshness_p50_ms"`
	FreshP99     float64 `json:"freshness_p99_ms"`
	// The changelog's latency at the steady rate: state commit → a
	// read_committed consumer sees the record.
	ChangelogCount int     `json:"changelog_samples"`
	ChangelogP50   float64 `json:"changelog_latency_p50_ms"`
	ChangelogP99   float64 `json:"changelog_latency_p99_ms"`
	// The fan-out of a tier change to FanoutUsers users.
	FanoutTxn      float64    `json:"fanout_transaction_s"`
	FanoutRelayed  float64    `json:"fanout_relayed_s"`
	FanoutStall    float64    `json:"fanout_stall_ms"`
	FanoutWriteP50 float64    `json:"fanout_concurrent_write_p50_ms"`
	API            LoadResult `json:"api"`
	APIUnderIngest LoadResult `json:"api_under_ingest"`
	DirectPgx      LoadResult `json:"direct_pgx"`
	ConstJSON      LoadResult `json:"constant_json"`
	// APIBatch is GET /users?name=…, batchNames names a request; its RPS
	// counts requests.
	APIBatch LoadResult `json:"api_batch_100_names"`
	// APINetHTTP is API with net/http's client as the load generator.
	APINetHTTP LoadResult `json:"api_net_http_client"`
	// PageFirst and PageDeep are page 1 and page pageDepth of an
	// organization's users, pageSize a page, at pageConns connections.
	PageFirst LoadResult `json:"api_page_1"`
	PageDeep  LoadResult `json:"api_page_1000"`
	// CPU is each process's CPU use during (c)'s drain, in cores.
	CPU *PipelineCPU `json:"c_cpu_cores,omitempty"`

	// What (b), (a2) and (c) left in their schemas: they must match.
	storeDigest, minimumDigest, pipelineDigest, changelogDigest, outputsDigest string
}

// Figure is one line of the report: the median over runs and the spread.
type Figure struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Target string  `json:"target,omitempty"`
	// Met is "yes", "no" or "" (no target).
	Met string `json:"met,omitempty"`
}

// Report is everything one `streamjoin bench` measured.
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  string    `json:"machine"`
	Config   string    `json:"config"`
	// Only is Config.Only: "api" when only the API was measured.
	Only       string      `json:"only,omitempty"`
	Runs       []RunResult `json:"runs"`
	RSSEvents  int         `json:"rss_events,omitempty"`
	RSSBytes   int64       `json:"rss_peak_bytes,omitempty"`
	RSSSeconds float64     `json:"rss_run_seconds,omitempty"`
	Figures    []Figure    `json:"figures"`
}

func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func describe(c Config) string {
	w := c.Workload
	return fmt.Sprintf("%d users, %d orgs, %d events (+%d org events), %.1f%% out of order, %.1f%% duplicates, %.1f%% invalid, key by %s; %d runs, %d writers, batches of %d, (a2) %d per transaction per connection; freshness and API-under-ingest at %d events/s; API %d connections for %s; seed loop on %d events; RSS run %d events",
		w.Users, w.Orgs, w.Events, w.OrgEvents, w.OutOfOrder*100, w.Duplicates*100, w.Invalid*100, w.KeyBy,
		c.Runs, c.Writers, c.BatchSize, c.MinimumBatch, c.FreshRate, c.APIConns, c.APIDuration, c.SeedSample, c.RSSEvents)
}

func stats(vals []float64) (med, lo, hi float64) {
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0, 0, 0
	}
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

func (r *Report) summarize() {
	col := func(f func(RunResult) float64) []float64 {
		out := make([]float64, len(r.Runs))
		for i, run := range r.Runs {
			out[i] = f(run)
		}
		return out
	}
	add := func(name, unit string, vals []float64, target string, met func(float64) bool) {
		med, lo, hi := stats(vals)
		f := Figure{Name: name, Unit: unit, Median: med, Min: lo, Max: hi, Target: target}
		if met != nil {
			f.Met = "no"
			if met(med) {
				f.Met = "yes"
			}
		}
		r.Figures = append(r.Figures, f)
	}
	ratio := func(num, den func(RunResult) float64) []float64 {
		return col(func(x RunResult) float64 {
			if den(x) == 0 {
				return 0
			}
			return num(x) / den(x)
		})
	}
	if r.Only == "api" {
		r.apiFigures(add, col, ratio)
		return
	}
	a := func(x RunResult) float64 { return x.RawCopy }
	b := func(x RunResult) float64 { return x.StorePath }
	c := func(x RunResult) float64 { return x.Pipeline }
	d := func(x RunResult) float64 { return x.SeedLoop }
	a2 := func(x RunResult) float64 { return x.Minimum }
	add("(a) raw COPY, unindexed table: the database limit", "events/s", col(a), "", nil)
	add("(a2) the same work, minimum SQL and Go: the schema's floor", "events/s", col(a2), "", nil)
	add("(b) store write path, no Kafka", "events/s", col(b), "", nil)
	add("(c) end-to-end pipeline from a pre-filled topic", "events/s", col(c), "≥ 100,000", func(v float64) bool { return v >= 100_000 })
	add("(c) including process start and group join", "events/s", col(func(x RunResult) float64 { return x.PipelineWall }), "", nil)
	add("(d) per-event upsert loop (the seed's approach)", "events/s", col(d), "", nil)
	add("c / b", "ratio", ratio(c, b), "≥ 0.85", func(v float64) bool { return v >= 0.85 })
	add("c / a2", "ratio", ratio(c, a2), "≥ 0.8", func(v float64) bool { return v >= 0.8 })
	add("c / a", "ratio", ratio(c, a), "", nil)
	r.cpuFigures(add)
	add("c / d", "ratio", ratio(c, d), "≥ 30", func(v float64) bool { return v >= 30 })
	cl := func(x RunResult) float64 { return x.PipelineChangelog }
	add("(c+) end-to-end with the changelog on, until produced", "events/s", col(cl), "", nil)
	add("c+ / c (changelog on / off)", "ratio", ratio(cl, c), "≥ 0.8", func(v float64) bool { return v >= 0.8 })
	all := func(x RunResult) float64 { return x.PipelineOutputs }
	add("(c++) end-to-end with every output on (the default), until produced", "events/s", col(all), "", nil)
	add("c++ / c (every output on / off)", "ratio", ratio(all, c), "≥ 0.8", func(v float64) bool { return v >= 0.8 })
	add("(c++) steady stream not committed a minute after it ended", "share", col(func(x RunResult) float64 { return x.EmitBacklog }), "0", func(v float64) bool { return v == 0 })
	if r.allKeptUp() {
		add("as-of join: emission delay p50 beyond the organization watermark", "ms", col(func(x RunResult) float64 { return x.EmitP50 }), "", nil)
		add("as-of join: emission delay p99 beyond the organization watermark", "ms", col(func(x RunResult) float64 { return x.EmitP99 }), "≤ 250", func(v float64) bool { return v <= 250 })
	}
	add("correction burst: the correcting transaction", "s", col(func(x RunResult) float64 { return x.CorrTxn }), "", nil)
	add("correction burst: until every correction is produced", "s", col(func(x RunResult) float64 { return x.CorrRelayed }), "", nil)
	add("correction burst: longest concurrent log write (the ingest stall)", "ms", col(func(x RunResult) float64 { return x.CorrStall }), "", nil)
	add("correction burst: concurrent log write p50 before it", "ms", col(func(x RunResult) float64 { return x.CorrWriteP50 }), "", nil)
	add("freshness p50, produce → committed", "ms", col(func(x RunResult) float64 { return x.FreshP50 }), "", nil)
	add("freshness p99, produce → committed", "ms", col(func(x RunResult) float64 { return x.FreshP99 }), "≤ 250", func(v float64) bool { return v <= 250 })
	add("changelog latency p50, state commit → read_committed consumer", "ms", col(func(x RunResult) float64 { return x.ChangelogP50 }), "", nil)
	add("changelog latency p99, state commit → read_committed consumer", "ms", col(func(x RunResult) float64 { return x.ChangelogP99 }), "≤ 250", func(v float64) bool { return v <= 250 })
	add("fan-out: tier change transaction", "s", col(func(x RunResult) float64 { return x.FanoutTxn }), "", nil)
	add("fan-out: tier change until every record is produced", "s", col(func(x RunResult) float64 { return x.FanoutRelayed }), "", nil)
	add("fan-out: longest concurrent user write (the ingest stall)", "ms", col(func(x RunResult) float64 { return x.FanoutStall }), "", nil)
	add("fan-out: concurrent user write p50 before it", "ms", col(func(x RunResult) float64 { return x.FanoutWriteP50 }), "", nil)
	add("peak RSS of the pipeline process, this run", "MiB", col(func(x RunResult) float64 { return float64(x.PipelineRSS) / (1 << 20) }), "", nil)
	if r.RSSEvents > 0 {
		mib := float64(r.RSSBytes) / (1 << 20)
		add(fmt.Sprintf("peak RSS of the pipeline process, %d events", r.RSSEvents), "MiB", []float64{mib}, "≤ 256", func(v float64) bool { return v <= 256 })
	}
	r.apiFigures(add, col, ratio)
}

// cpuFigures adds the CPU split of (c), if every run measured it; a figure
// that was not measured is left out, never shown as 0.
func (r *Report) cpuFigures(add adder) {
	var sj, pg, be []float64
	for _, run := range r.Runs {
		if run.CPU == nil {
			return
		}
		sj = append(sj, run.CPU.Streamjoin)
		be = append(be, run.CPU.Bench)
		if run.CPU.Postgres != nil {
			pg = append(pg, *run.CPU.Postgres)
		}
	}
	add("CPU during (c): streamjoin run", "cores", sj, "", nil)
	if len(pg) == len(r.Runs) {
		add("CPU during (c): PostgreSQL, all its processes", "cores", pg, "≥ 1.2 (PostgreSQL busy)", func(v float64) bool { return v >= 1.2 })
	}
	add("CPU during (c): bench process (kfake broker, offset polling)", "cores", be, "", nil)
}

func format(v float64, unit string) string {
	switch {
	case unit == "ratio" || unit == "cores":
		return fmt.Sprintf("%.2f", v)
	case unit == "ms":
		return fmt.Sprintf("%.1f", v)
	case v >= 100:
		return commas(int64(v + 0.5))
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteTable prints the figures as an aligned text table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "figure\tmedian\tmin\tmax\tunit\ttarget\tmet\t\n")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.Name, format(f.Median, f.Unit), format(f.Min, f.Unit), format(f.Max, f.Unit), f.Unit, f.Target, f.Met)
	}
	return tw.Flush()
}

// Markdown renders the report as a Markdown section.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s to %s on %s.\n\n", r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339), r.Machine)
	fmt.Fprintf(&b, "Workload: %s.\n\n", r.Config)
	fmt.Fprintf(&b, "| figure | median | min | max | unit | target | met |\n| --- | ---: | ---: | ---: | --- | --- | --- |\n")
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", f.Name, format(f.Median, f.Unit), format(f.Min, f.Unit), format(f.Max, f.Unit), f.Unit, f.Target, f.Met)
	}
	return b.String()
}

func (r *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), js, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.md"), []byte(r.Markdown()), 0o644)
}

// adder adds a figure to the report (see summarize).
type adder func(name, unit string, vals []float64, target string, met func(float64) bool)

// apiFigures adds the API's figures; with Only "api" there was no ingest,
// so the API-under-ingest figures are left out rather than shown as 0.
func (r *Report) apiFigures(add adder, col func(func(RunResult) float64) []float64, ratio func(num, den func(RunResult) float64) []float64) {
	add("API GET /users/{name}, 50 conns", "req/s", col(func(x RunResult) float64 { return x.API.RPS }), "≥ 10,000", func(v float64) bool { return v >= 10_000 })
	add("API p50", "ms", col(func(x RunResult) float64 { return x.API.P50 }), "", nil)
	add("API p99", "ms", col(func(x RunResult) float64 { return x.API.P99 }), "≤ 10", func(v float64) bool { return v <= 10 })
	add("same query through pgx directly", "req/s", col(func(x RunResult) float64 { return x.DirectPgx.RPS }), "", nil)
	add("pgx p99", "ms", col(func(x RunResult) float64 { return x.DirectPgx.P99 }), "", nil)
	add("API / direct pgx", "ratio", ratio(func(x RunResult) float64 { return x.API.RPS }, func(x RunResult) float64 { return x.DirectPgx.RPS }), "≥ 0.8", func(v float64) bool { return v >= 0.8 })
	netHTTP := func(x RunResult) float64 { return x.APINetHTTP.RPS }
	add("API again, net/http's client as the load generator", "req/s", col(netHTTP), "", nil)
	add("API (net/http client) / direct pgx", "ratio", ratio(netHTTP, func(x RunResult) float64 { return x.DirectPgx.RPS }), "", nil)
	add("constant-JSON handler", "req/s", col(func(x RunResult) float64 { return x.ConstJSON.RPS }), "", nil)
	add("constant-JSON p99", "ms", col(func(x RunResult) float64 { return x.ConstJSON.P99 }), "", nil)
	single := func(x RunResult) float64 { return x.API.RPS }
	batch := func(x RunResult) float64 { return x.APIBatch.RPS * batchNames }
	add(fmt.Sprintf("API GET /users?name=…×%d (batch), 50 conns", batchNames), "names/s", col(batch), "", nil)
	add("API batch p99", "ms", col(func(x RunResult) float64 { return x.APIBatch.P99 }), "", nil)
	add(fmt.Sprintf("names/s: batch of %d / single-name requests", batchNames), "ratio", ratio(batch, single), "≥ 5", func(v float64) bool { return v >= 5 })
	first := func(x RunResult) float64 { return x.PageFirst.RPS }
	deep := func(x RunResult) float64 { return x.PageDeep.RPS }
	add(fmt.Sprintf("API page 1 of an organization's users (%d a page), %d conns", pageSize, pageConns), "req/s", col(first), "", nil)
	add("page 1 p50", "ms", col(func(x RunResult) float64 { return x.PageFirst.P50 }), "", nil)
	add(fmt.Sprintf("API page %s of the same", commas(pageDepth)), "req/s", col(deep), "", nil)
	add(fmt.Sprintf("page %s p50", commas(pageDepth)), "ms", col(func(x RunResult) float64 { return x.PageDeep.P50 }), "", nil)
	add(fmt.Sprintf("page %s / page 1 (req/s)", commas(pageDepth)), "ratio", ratio(deep, first), "≥ 0.8 (no growth with depth)", func(v float64) bool { return v >= 0.8 })
	if r.Only == "api" {
		return
	}
	add("API while ingesting at the steady rate", "req/s", col(func(x RunResult) float64 { return x.APIUnderIngest.RPS }), "", nil)
	add("API p99 while ingesting", "ms", col(func(x RunResult) float64 { return x.APIUnderIngest.P99 }), "", nil)
}

// allKeptUp reports whether (c++) kept up with the steady stream in every
// run, so that its emission delays are figures (a run that did not keep
// up measured none, and 0 is not its delay).
func (r *Report) allKeptUp() bool {
	for _, run := range r.Runs {
		if run.EmitBacklog > 0 {
			return false
		}
	}
	return true
}
