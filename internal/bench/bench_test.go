package bench_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/bench"
	"github.com/streamjoin/streamjoin/internal/testenv"
	"github.com/streamjoin/streamjoin/internal/workload"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestBenchSmoke runs the whole benchmark at a tiny scale, with the real
// binary, so that `make bench` keeps working: every figure must be there and
// every figure positive (throughputs, CPU, latencies), and (a2) and (c) must
// leave the same state as (b), which Run checks. It asserts nothing about
// speed.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "streamjoin")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/streamjoin").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := t.TempDir()
	rep, err := bench.Run(context.Background(), bench.Config{
		Workload:      workload.Config{Users: 500, Orgs: 50, Events: 5000, OrgEvents: 200},
		Runs:          1,
		SeedSample:    200,
		FreshRate:     2000,
		FreshDuration: time.Second,
		APIConns:      4,
		APIDuration:   time.Second,
		RSSEvents:     5000,
		FanoutUsers:   2000,
		Binary:        bin,
		Postgres:      testenv.PostgresDSN(t),
		Out:           out,
	}, testenv.Logger(t), func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"(a)", "(a2)", "(b)", "(c)", "(d)", "c / b", "c / a2", "c / a", "c / d",
		"CPU during (c): streamjoin", "CPU during (c): PostgreSQL", "CPU during (c): bench process", "freshness p99", "(c+)", "c+ / c", "changelog latency p99", "fan-out: tier change transaction", "fan-out: longest", "peak RSS", "5000 events", "API GET", "direct", "net/http's client", "constant-JSON", "(batch)", "batch of 100 / single-name", "page 1 of", "page 1,000 of", "page 1,000 / page 1", "while ingesting"}
	var names []string
	for _, f := range rep.Figures {
		names = append(names, f.Name)
		switch {
		case strings.HasPrefix(f.Name, "CPU during (c)"):
			// Counted in 10 ms ticks over a drain of a few tens of
			// milliseconds at this scale: 0 is a real reading here.
			// Present (checked below) and not negative is what the
			// smoke test can ask.
			if f.Median < 0 {
				t.Errorf("%s = %v, want at least 0", f.Name, f.Median)
			}
		case strings.Contains(f.Name, "not committed a minute after"):
			// A share, 0 when the pipeline kept up: it must be one.
			if f.Median != 0 {
				t.Errorf("%s = %v: (c++) did not keep up with the smoke test's stream", f.Name, f.Median)
			}
		case f.Median <= 0 && !strings.Contains(f.Name, "freshness p50"):
			t.Errorf("%s = %v, want a positive measurement", f.Name, f.Median)
		}
	}
	all := strings.Join(names, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no figure mentions %q; figures:\n%s", w, all)
		}
	}
	for _, f := range []string{"bench.json", "bench.md"} {
		if b, err := os.ReadFile(filepath.Join(out, f)); err != nil || len(b) == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	var buf strings.Builder
	if err := rep.WriteTable(&buf); err != nil || !strings.Contains(buf.String(), "target") {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
	t.Logf("\n%s", buf.String())
}

// TestBenchOnlyAPI runs `bench --only api` at a tiny scale: the API's
// figures, all positive, and nothing else (no pipeline ran, so no pipeline
// figure may appear, not even as 0). Run itself fails if the API it
// measured was not behind its token or did not count its requests in
// /metrics (checkAuthAndMetrics).
func TestBenchOnlyAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "streamjoin")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/streamjoin").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rep, err := bench.Run(context.Background(), bench.Config{
		Workload:    workload.Config{Users: 500, Orgs: 50, Events: 5000, OrgEvents: 200},
		Runs:        1,
		APIConns:    4,
		APIDuration: time.Second,
		Binary:      bin,
		Postgres:    testenv.PostgresDSN(t),
		Only:        "api",
	}, testenv.Logger(t), func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range rep.Figures {
		names = append(names, f.Name)
		if f.Median <= 0 {
			t.Errorf("%s = %v, want a positive measurement", f.Name, f.Median)
		}
		for _, not := range []string{"(a)", "(b)", "(c)", "freshness", "RSS", "while ingesting", "fan-out"} {
			if strings.Contains(f.Name, not) {
				t.Errorf("figure %q with --only api", f.Name)
			}
		}
	}
	all := strings.Join(names, "\n")
	for _, w := range []string{"API GET /users/{name}", "API / direct pgx", "batch of 100 / single-name", "page 1,000 / page 1"} {
		if !strings.Contains(all, w) {
			t.Errorf("no figure mentions %q; figures:\n%s", w, all)
		}
	}
}
