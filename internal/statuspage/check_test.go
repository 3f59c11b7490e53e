package statuspage_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// series returns the values of family name in a scrape, keyed as
// page.values keys the page's; ok is false when the family is absent.
func series(m testenv.Metrics, name string, labels ...string) (map[string]string, bool) {
	mf, ok := m[name]
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for _, s := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		var key []string
		for _, l := range labels {
			key = append(key, have[l])
		}
		var v float64
		switch {
		case s.GetCounter() != nil:
			v = s.GetCounter().GetValue()
		case s.GetGauge() != nil:
			v = s.GetGauge().GetValue()
		}
		out[strings.Join(key, "|")] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return out, true
}

// checkAgainstMetrics compares the page's last load with a scrape of
// /metrics taken right after, the pipeline idle in between. A family the
// scrape has must show its series with the same values (watermarks: the
// same topics, their values move with the clock on idle partitions); a
// family it lacks must show as — alone.
func checkAgainstMetrics(t *testing.T, p page, m testenv.Metrics) {
	t.Helper()
	for _, f := range []struct {
		name   string
		labels []string
		exact  bool
	}{
		{"streamjoin_ingest_records_total", []string{"topic", "outcome"}, true},
		{"streamjoin_ingest_dead_letters_total", []string{"topic", "code"}, true},
		{"streamjoin_ingest_consumer_lag_records", []string{"topic", "partition"}, true},
		{"streamjoin_ready", nil, true},
		{"streamjoin_watermark_seconds", []string{"topic"}, false},
	} {
		onPage := p.values(f.name, f.labels...)
		want, ok := series(m, f.name, f.labels...)
		if !ok {
			t.Logf("%s is not in /metrics: the page must show —", f.name)
			if len(onPage) != 1 || !slices.Equal(slices.Collect(maps.Values(onPage)), []string{"—"}) {
				t.Errorf("%s is not in /metrics; the page shows %v, want — alone", f.name, onPage)
			}
			continue
		}
		if f.name == "streamjoin_ingest_records_total" || f.name == "streamjoin_ingest_dead_letters_total" {
			if len(want) == 0 {
				t.Errorf("%s: no series in /metrics after the sample", f.name)
			}
		}
		if !f.exact {
			if !slices.Equal(slices.Sorted(maps.Keys(onPage)), slices.Sorted(maps.Keys(want))) {
				t.Errorf("%s: the page shows %v, /metrics has %v", f.name, onPage, want)
			}
			for k, v := range onPage {
				if v == "—" {
					t.Errorf("%s{%s}: — on the page, but /metrics has it", f.name, k)
				}
			}
			continue
		}
		if !maps.Equal(onPage, want) {
			t.Errorf("%s: the page shows %v, /metrics has %v", f.name, onPage, want)
		}
	}
	// Freshness: the page's count of observations is the histogram's, and
	// its quantiles are known once there is one.
	count := p.values("streamjoin_ingest_freshness_seconds_count")[""]
	quantiles := p.values("streamjoin_ingest_freshness_seconds", "quantile")
	mf, ok := m["streamjoin_ingest_freshness_seconds"]
	switch {
	case !ok:
		if count != "—" || quantiles["0.5"] != "—" || quantiles["0.99"] != "—" {
			t.Errorf("freshness is not in /metrics; the page shows count %s, quantiles %v, want —", count, quantiles)
		}
	case mf.GetType() != dto.MetricType_HISTOGRAM:
		t.Errorf("streamjoin_ingest_freshness_seconds is a %s, not a histogram", mf.GetType())
	default:
		var n uint64
		for _, s := range mf.GetMetric() {
			n += s.GetHistogram().GetSampleCount()
		}
		if count != strconv.FormatUint(n, 10) {
			t.Errorf("freshness observations: %s on the page, %d in /metrics", count, n)
		}
		for _, q := range []string{"0.5", "0.99"} {
			if v, err := strconv.ParseFloat(quantiles[q], 64); n > 0 && (err != nil || v < 0) {
				t.Errorf("freshness p%s: %q on the page, want a duration (%d observations)", q, quantiles[q], n)
			}
		}
	}
}

// checkDeadLetters checks the page's latest dead letters: as many as the
// ring holds (10) of the want committed, each one a dead letter the
// dead-letter topics hold (read read_committed), with its code and reason.
func checkDeadLetters(t *testing.T, ctx context.Context, broker string, p page, want int) {
	t.Helper()
	inTopics := readDeadLetters(t, ctx, broker, want)
	if got := len(p.DeadLetters); got != min(10, want) {
		t.Errorf("the page lists %d dead letters, want %d", got, min(10, want))
	}
	for _, d := range p.DeadLetters {
		key := strings.Join([]string{d.Attrs["data-topic"], d.Attrs["data-partition"], d.Attrs["data-offset"], d.Attrs["data-code"], d.Text}, "|")
		if !inTopics[key] {
			t.Errorf("the page lists dead letter %s, which the dead-letter topics do not hold", key)
		}
	}
	if !strings.Contains(p.Text, `received_at "yesterday" is neither`) {
		t.Error(`the page does not show Brett's reason (received_at "yesterday" is neither …)`)
	}
}

// readDeadLetters reads n dead letters from user_events.dlq and
// org_events.dlq and returns them keyed as checkDeadLetters keys the
// page's: source topic, partition, offset, code and reason.
func readDeadLetters(t *testing.T, ctx context.Context, broker string, n int) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("user_events.dlq", "org_events.dlq"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out := map[string]bool{}
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d dead letters of %d: %v", len(out), n, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			src, ok := dlq.SourceOf(r)
			if !ok {
				t.Errorf("a dead letter without its source: %v", r.Headers)
				return
			}
			out[fmt.Sprintf("%s|%d|%d|%s|%s", src.Topic, src.Partition.Partition, src.Offset, dlq.Header(r, dlq.HeaderErrorCode), dlq.Header(r, dlq.HeaderError))] = true
		})
	}
	return out
}

// saveScreenshot writes the page, whole, to docs/status.png when
// STREAMJOIN_UPDATE_SCREENSHOT=1, else to a temporary directory.
func saveScreenshot(t *testing.T, b context.Context) {
	t.Helper()
	png, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), "status.png")
	if os.Getenv("STREAMJOIN_UPDATE_SCREENSHOT") == "1" {
		path = filepath.Join("..", "..", "docs", "status.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
