package statuspage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/produce"
	"github.com/streamjoin/streamjoin/internal/sample"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// chromium is the browser the test drives; no tool downloads one.
const chromium = "/usr/bin/chromium"

// TestStatusPageInChromium feeds the dev sample (invalid records included)
// through the whole process twice, reads the status page in a headless
// Chromium after each round, and checks what it shows: the first load has
// no rate yet, the page reloads itself, the loads after it show the records
// per second in between, and the last one agrees with a scrape of /metrics
// taken right after (the records and dead letters by code exactly; lag,
// freshness, readiness and watermarks shown exactly when /metrics has them
// and as — when it does not), and lists the latest dead letters with the
// reasons the dead-letter topics hold.
func TestStatusPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no Chromium at %s (%v): scripts/ensure-chromium.sh installs it (make test runs it)", chromium, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p := startProcess(t)
	perRound := map[string]float64{
		"user_events|dead_letter": sample.InvalidUserEvents,
		"org_events|dead_letter":  sample.InvalidOrgEvents,
		"user_events|valid":       float64(len(sample.UserEvents) - sample.InvalidUserEvents),
		"org_events|valid":        float64(len(sample.OrgEvents) - sample.InvalidOrgEvents),
	}
	produceSample(t, p.broker)
	p.waitRecords(t, perRound, 1)

	b := newBrowser(t, ctx)
	if err := chromedp.Do(b, chromedp.EmulateViewport(1200, 900), chromedp.Navigate(p.base+"/")); err != nil {
		t.Fatalf("loading %s/ in Chromium: %v", p.base, err)
	}
	first := readPage(t, b, 0)
	if first.Rate.Value != "" || first.Rate.Text != "—" {
		t.Errorf("first load: ingest rate %+v, want — (nothing to measure against yet)", first.Rate)
	}
	if got := first.records(); got != 1*total(perRound) {
		t.Errorf("first load: %v records on the page, want %v", got, total(perRound))
	}

	// A second round, read by the page's own reloads.
	produceSample(t, p.broker)
	p.waitRecords(t, perRound, 2)
	loads := []page{first}
	for loads[len(loads)-1].records() != 2*total(perRound) {
		if len(loads) > 12 {
			t.Fatalf("after %d reloads the page shows %v records, want %v", len(loads)-1, loads[len(loads)-1].records(), 2*total(perRound))
		}
		loads = append(loads, readPage(t, b, loads[len(loads)-1].Origin))
	}
	checkRates(t, loads)
	last := loads[len(loads)-1]
	m, err := testenv.ScrapeMetrics(p.base+"/metrics", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstMetrics(t, last, m)
	checkDeadLetters(t, ctx, p.broker, last, int(2*(sample.InvalidUserEvents+sample.InvalidOrgEvents)))
	if last.Health != "UP" || last.Ready != "READY" {
		t.Errorf("health %q, ready %q; want UP and READY", last.Health, last.Ready)
	}
	saveScreenshot(t, b)
}

func total(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// process is the whole streamjoin process under test.
type process struct {
	base   string // http://host:port
	broker string
}

// startProcess runs app.Run (every role) against kfake and the test
// PostgreSQL, waits until /ready answers 200, and stops it when t ends.
func startProcess(t *testing.T) *process {
	t.Helper()
	broker, _ := testenv.Kafka(t)
	cfg := app.Config{Store: store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}}
	cfg.Kafka.Brokers = []string{broker}
	cfg.Ingest.CreateTopics = true
	cfg.API.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, testenv.Logger(t), func(a net.Addr) { addrc <- a }) }()
	p := &process{broker: broker}
	select {
	case a := <-addrc:
		p.base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("app.Run returned early: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the API did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app.Run after shutdown: %v", err)
			}
		case <-time.After(45 * time.Second):
			t.Error("app.Run did not return within 45s of shutdown")
		}
	})
	waitFor(t, "/ready", func() error { return checkReady(p.base) })
	return p
}

func checkReady(base string) error {
	resp, err := http.Get(base + "/ready")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/ready: %d", resp.StatusCode)
	}
	return nil
}

// waitRecords waits until streamjoin_ingest_records_total holds rounds
// times perRound (by "topic|outcome"); an absent series is never 0.
func (p *process) waitRecords(t *testing.T, perRound map[string]float64, rounds float64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%v rounds of the sample to be counted", rounds), func() error {
		m, err := testenv.ScrapeMetrics(p.base+"/metrics", 5*time.Second)
		if err != nil {
			return err
		}
		for k, want := range perRound {
			topic, outcome, _ := strings.Cut(k, "|")
			v, err := m.Value("streamjoin_ingest_records_total", map[string]string{"topic": topic, "outcome": outcome})
			if err != nil {
				return err
			}
			if v != rounds*want {
				return fmt.Errorf("%s: %v records, want %v", k, v, rounds*want)
			}
		}
		return nil
	})
}

func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func produceSample(t *testing.T, broker string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, s := range []struct {
		topic  string
		values []json.RawMessage
		key    string
	}{{"user_events", sample.UserEvents, "received_at"}, {"org_events", sample.OrgEvents, "created_at"}} {
		if _, err := produce.Records(context.Background(), cl, s.topic, s.values, s.key, nil); err != nil {
			t.Fatalf("producing the sample to %s: %v", s.topic, err)
		}
	}
}

// newBrowser starts a headless Chromium at /usr/bin/chromium, closed when
// t ends.
func newBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.DisableGPU,
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	b, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(b); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return b
}

// elem is an element of the page with an id or a data-metric attribute.
type elem struct {
	Attrs map[string]string `json:"attrs"`
	Text  string            `json:"text"`
}

// page is what one load of the status page shows.
type page struct {
	Origin      float64 `json:"origin"` // performance.timeOrigin: one per load
	Health      string  `json:"health"`
	Ready       string  `json:"ready"`
	Rate        struct{ Value, Text string }
	Elems       []elem `json:"elems"`
	DeadLetters []elem `json:"deadLetters"`
	Text        string `json:"text"`
}

const readJS = `(() => {
  if (document.readyState !== "complete" || !document.getElementById("ingest-rate")) return null;
  const attrs = e => Object.fromEntries(Array.from(e.attributes).map(a => [a.name, a.value]));
  const rate = document.getElementById("ingest-rate");
  return {
    origin: performance.timeOrigin,
    health: document.getElementById("health").dataset.value,
    ready: document.getElementById("ready").dataset.value,
    Rate: {Value: rate.dataset.value || "", Text: rate.textContent.trim()},
    elems: Array.from(document.querySelectorAll("[data-metric]")).map(e => ({attrs: attrs(e), text: e.textContent.trim()})),
    deadLetters: Array.from(document.querySelectorAll("tr.dead-letter")).map(e => ({attrs: attrs(e), text: e.querySelector(".reason").textContent})),
    text: document.body.innerText,
  };
})()`

// readPage waits for a loaded page whose timeOrigin differs from after (0:
// any) and reads it. The page's own refresh brings each new load.
func readPage(t *testing.T, b context.Context, after float64) page {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := chromedp.Run(b, chromedp.Evaluate[*page](readJS))
		if err == nil && p != nil && p.Origin != after {
			return *p
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new load of the page within 30s (last error %v): does it reload itself?", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// values returns the data-value of every element of family name, keyed by
// the given data-* attributes joined with "|"; an element without
// data-value is "—".
func (p page) values(name string, labels ...string) map[string]string {
	out := map[string]string{}
	for _, e := range p.Elems {
		if e.Attrs["data-metric"] != name {
			continue
		}
		var key []string
		for _, l := range labels {
			key = append(key, e.Attrs["data-"+l])
		}
		v, ok := e.Attrs["data-value"]
		if !ok {
			v = "—"
		}
		out[strings.Join(key, "|")] = v
	}
	return out
}

// records is the page's count of committed records (valid and dead
// letters), -1 if it shows none.
func (p page) records() float64 {
	var n float64 = -1
	for k, v := range p.values("streamjoin_ingest_records_total", "topic", "outcome") {
		if _, outcome, _ := strings.Cut(k, "|"); outcome != "valid" && outcome != "dead_letter" {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return -1
		}
		n = max(n, 0) + f
	}
	return n
}

// checkRates checks each load after the first: its rate is known, and is
// the records committed since the previous load over the time between the
// two (within 30%: the page samples when the server renders it, the
// browser's clock starts at navigation).
func checkRates(t *testing.T, loads []page) {
	t.Helper()
	sawPositive := false
	for i := 1; i < len(loads); i++ {
		prev, cur := loads[i-1], loads[i]
		rate, err := strconv.ParseFloat(cur.Rate.Value, 64)
		if err != nil {
			t.Errorf("load %d: ingest rate %+v, want a number", i, cur.Rate)
			continue
		}
		want := (cur.records() - prev.records()) / ((cur.Origin - prev.Origin) / 1000)
		if math.Abs(rate-want) > 0.3*want || (want == 0) != (rate == 0) {
			t.Errorf("load %d: ingest rate %v records/s, want about %v (%v records in %.1fs)", i, rate, want, cur.records()-prev.records(), (cur.Origin-prev.Origin)/1000)
		}
		t.Logf("load %d: %v records, %v records/s (%s)", i, cur.records(), rate, cur.Rate.Text)
		sawPositive = sawPositive || rate > 0
	}
	if !sawPositive {
		t.Errorf("no load after the second round showed a positive rate (%d loads)", len(loads))
	}
}
