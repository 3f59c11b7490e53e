// Package grafana_test holds the Grafana dashboard (streamjoin.json) to the
// metrics the binary exports.
package grafana_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/produce"
	"github.com/streamjoin/streamjoin/internal/sample"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// panel is what the test reads of a Grafana panel; rows nest panels.
type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// dashboardQueries reads path and returns each panel's queries by panel
// title; a panel that is not a row and has no query fails the test.
func dashboardQueries(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: uid %q, title %q, %d panels: want all three", path, d.UID, d.Title, len(d.Panels))
	}
	out := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) != "" {
					out[p.Title] = append(out[p.Title], tg.Expr)
				}
			}
			if len(out[p.Title]) == 0 {
				t.Errorf("%s: panel %q has no query", path, p.Title)
			}
		}
	}
	walk(d.Panels)
	return out
}

// exported reports whether name, as a query writes it, is a series of a
// family in m: the family itself, or a histogram's or summary's _bucket,
// _sum or _count.
func exported(m testenv.Metrics, name string) bool {
	if _, ok := m[name]; ok {
		return true
	}
	for _, suf := range seriesSuffixes {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		if mf, ok := m[base]; ok && (mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY) {
			return suf != "_bucket" || mf.GetType() == dto.MetricType_HISTOGRAM
		}
	}
	return false
}

// TestDashboardQueriesExportedMetrics runs the whole process (pipeline,
// changelog relay and API) on kfake and a private PostgreSQL, sends it the
// sample (which has dead letters), waits until records, dead letters, the
// changelog, a watermark and the consumer's lag have all shown up, asks the
// API once, and then checks that every metric every panel of
// streamjoin.json queries is in one scrape of /metrics. A panel that names
// a metric the binary does not export (renamed, misspelt, removed) fails.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	path := os.Getenv("STREAMJOIN_DASHBOARD") // to try another file: the test must fail for a bogus name
	if path == "" {
		path = "streamjoin.json"
	}
	queries := dashboardQueries(t, path)

	broker, _ := testenv.Kafka(t)
	cfg := app.Config{Store: store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}}
	cfg.Changelog.Topic = "user_profiles"
	cfg.Kafka.Brokers = []string{broker}
	cfg.Ingest.CreateTopics = true
	cfg.Ingest.IdleTimeout = 300 * time.Millisecond
	cfg.Ingest.WatermarkInterval = 50 * time.Millisecond
	cfg.API.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, testenv.Logger(t), func(a net.Addr) { addrc <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app.Run: %v", err)
			}
		case <-time.After(45 * time.Second):
			t.Error("app.Run did not return within 45s of shutdown")
		}
	})
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("app.Run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("API did not start")
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	for topic, values := range map[string][]json.RawMessage{"user_events": sample.UserEvents, "org_events": sample.OrgEvents} {
		if _, err := produce.Records(context.Background(), cl, topic, values, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()

	// The records have flowed once each of these has a series.
	flowed := []string{
		"streamjoin_ingest_dead_letters_total", "streamjoin_watermark_lag_seconds",
		"streamjoin_ingest_consumer_lag_records", "streamjoin_changelog_records_total",
	}
	var m testenv.Metrics
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, err = testenv.ScrapeMetrics(base+"/metrics", 5*time.Second)
		missing := []string{}
		for _, name := range flowed {
			if v, serr := m.Sum(name, nil); serr != nil || (strings.HasSuffix(name, "_total") && v == 0) {
				missing = append(missing, name)
			}
		}
		if err == nil && len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records did not flow within 60s: %v; still waiting for %v", err, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get(base + "/users/Ripley")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if m, err = testenv.ScrapeMetrics(base+"/metrics", 5*time.Second); err != nil {
		t.Fatal(err)
	}

	checked := 0
	for _, title := range slices.Sorted(maps.Keys(queries)) {
		for _, expr := range queries[title] {
			names := metricNames(expr)
			if len(names) == 0 {
				t.Errorf("panel %q: no metric found in %s", title, expr)
			}
			for _, name := range names {
				checked++
				if !exported(m, name) {
					t.Errorf("panel %q queries %s, which the binary does not export (%s)", title, name, expr)
				}
			}
		}
	}
	if t.Failed() {
		var have []string
		for name := range m {
			if strings.HasPrefix(name, "streamjoin_") {
				have = append(have, name)
			}
		}
		sort.Strings(have)
		t.Logf("exported: %s", strings.Join(have, " "))
	}
	t.Logf("%d panels, %d metric references checked", len(queries), checked)
}
