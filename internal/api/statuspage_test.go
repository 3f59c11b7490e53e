package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/html"
)

// pageElem is an element of the status page: its attributes and text.
type pageElem struct {
	attrs map[string]string
	text  string
}

// parsePage checks that page is well-formed HTML (a doctype, every
// non-void element closed in order, nothing after </html>) that loads
// nothing from elsewhere (every src and href is a path on this origin, no
// script or stylesheet is fetched), and returns its elements that have an
// id or a data-metric attribute, in document order.
func parsePage(t *testing.T, page []byte) []pageElem {
	t.Helper()
	for _, bad := range []string{"http://", "https://", "//cdn", "@import", "<script", "<link"} {
		if bytes.Contains(page, []byte(bad)) {
			t.Errorf("the page holds %q: it must load nothing from elsewhere", bad)
		}
	}
	z := html.NewTokenizer(bytes.NewReader(page))
	var (
		open    []string
		out     []pageElem
		current []int // indexes in out of the open elements collected
		doctype bool
		closed  bool
	)
	void := []string{"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.DoctypeToken:
			doctype = strings.EqualFold(tok.Data, "html")
		case html.StartTagToken, html.SelfClosingTagToken:
			if closed {
				t.Errorf("<%s> after </html>", tok.Data)
			}
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				if _, dup := attrs[a.Key]; dup {
					t.Errorf("<%s>: attribute %s twice", tok.Data, a.Key)
				}
				attrs[a.Key] = a.Val
				if (a.Key == "src" || a.Key == "href" || a.Key == "action") && (!strings.HasPrefix(a.Val, "/") || strings.HasPrefix(a.Val, "//")) {
					t.Errorf("<%s %s=%q>: not a path on this origin", tok.Data, a.Key, a.Val)
				}
			}
			if attrs["id"] != "" || attrs["data-metric"] != "" {
				out = append(out, pageElem{attrs: attrs})
				current = append(current, len(out)-1)
			} else {
				current = append(current, -1)
			}
			if tt == html.SelfClosingTagToken || slices.Contains(void, tok.Data) {
				current = current[:len(current)-1]
				continue
			}
			open = append(open, tok.Data)
		case html.EndTagToken:
			if len(open) == 0 || open[len(open)-1] != tok.Data {
				t.Fatalf("</%s> closes nothing open (open: %v)", tok.Data, open)
			}
			open, current = open[:len(open)-1], current[:len(current)-1]
			closed = tok.Data == "html"
		case html.TextToken:
			for _, i := range current {
				if i >= 0 {
					out[i].text += tok.Data
				}
			}
		}
	}
	if err := z.Err(); err != nil && err.Error() != "EOF" {
		t.Fatal(err)
	}
	if !doctype || !closed || len(open) != 0 {
		t.Errorf("not a whole document: doctype %v, </html> %v, left open %v", doctype, closed, open)
	}
	for i := range out {
		out[i].text = strings.Join(strings.Fields(out[i].text), " ")
	}
	return out
}

// metricElems returns the page's elements of metric family name whose
// attributes include want (attribute name to value).
func metricElems(elems []pageElem, name string, want map[string]string) []pageElem {
	var out []pageElem
	for _, e := range elems {
		if e.attrs["data-metric"] != name {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && e.attrs[k] == v
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

func byID(elems []pageElem, id string) (pageElem, bool) {
	for _, e := range elems {
		if e.attrs["id"] == id {
			return e, true
		}
	}
	return pageElem{}, false
}

// getStatus serves GET / from srv and returns the page's elements.
func getStatus(t *testing.T, srv *Server) []pageElem {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET /: content type %q", ct)
	}
	CheckAgainstSpec(t, req, rec.Code, rec.Header(), rec.Body.Bytes())
	return parsePage(t, rec.Body.Bytes())
}

// fullRegistry holds every metric the page shows, with known values.
func fullRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	records := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "streamjoin_ingest_records_total"}, []string{"topic", "outcome"})
	records.WithLabelValues("user_events", "valid").Add(7)
	records.WithLabelValues("user_events", "dead_letter").Add(2)
	records.WithLabelValues("org_events", "valid").Add(0)
	records.WithLabelValues("org_events", "skipped").Add(100) // not in the rate
	dead := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "streamjoin_ingest_dead_letters_total"}, []string{"topic", "code"})
	dead.WithLabelValues("user_events", "bad_timestamp").Add(2)
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "streamjoin_ingest_consumer_lag_records"}, []string{"topic", "partition"})
	lag.WithLabelValues("user_events", "10").Set(5)
	lag.WithLabelValues("user_events", "2").Set(0) // present and 0: shown as 0
	fresh := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "streamjoin_ingest_freshness_seconds", Buckets: []float64{0.1, 0.5, 1}})
	for range 50 {
		fresh.Observe(0.05)
	}
	for range 49 {
		fresh.Observe(0.3)
	}
	fresh.Observe(0.7)
	ready := prometheus.NewGauge(prometheus.GaugeOpts{Name: "streamjoin_ready"})
	ready.Set(1)
	wm := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "streamjoin_watermark_seconds"}, []string{"topic"})
	wm.WithLabelValues("user_events").Set(1.6e9)
	reg.MustRegister(records, dead, lag, fresh, ready, wm)
	return reg
}

// The page shows each present metric's value, a present 0 as 0, and every
// absent one as "—", never as 0.
func TestStatusPageNumbers(t *testing.T) {
	t.Parallel()
	type want struct {
		metric string
		labels map[string]string
		value  string // "" : unknown, shown as —
		text   string
	}
	for _, tc := range []struct {
		name     string
		gatherer prometheus.Gatherer
		want     []want
	}{
		{"no gatherer", nil, []want{
			{"streamjoin_ready", nil, "", "—"},
			{"streamjoin_ingest_records_total", nil, "", "—"},
			{"streamjoin_ingest_consumer_lag_records", nil, "", "—"},
			{"streamjoin_ingest_freshness_seconds", map[string]string{"data-quantile": "0.5"}, "", "—"},
			{"streamjoin_ingest_freshness_seconds", map[string]string{"data-quantile": "0.99"}, "", "—"},
			{"streamjoin_ingest_freshness_seconds_count", nil, "", "—"},
			{"streamjoin_watermark_seconds", nil, "", "—"},
		}},
		{"a registry without them", prometheus.NewRegistry(), []want{
			{"streamjoin_ready", nil, "", "—"},
			{"streamjoin_ingest_records_total", nil, "", "—"},
			{"streamjoin_ingest_consumer_lag_records", nil, "", "—"},
			{"streamjoin_ingest_freshness_seconds", map[string]string{"data-quantile": "0.99"}, "", "—"},
			{"streamjoin_ingest_freshness_seconds_count", nil, "", "—"},
			{"streamjoin_watermark_seconds", nil, "", "—"},
		}},
		{"every metric", fullRegistry(), []want{
			{"streamjoin_ready", nil, "1", "1"},
			{"streamjoin_ingest_records_total", map[string]string{"data-topic": "user_events", "data-outcome": "valid"}, "7", "7"},
			{"streamjoin_ingest_records_total", map[string]string{"data-topic": "user_events", "data-outcome": "dead_letter"}, "2", "2"},
			{"streamjoin_ingest_records_total", map[string]string{"data-topic": "org_events", "data-outcome": "valid"}, "0", "0"},
			{"streamjoin_ingest_consumer_lag_records", map[string]string{"data-topic": "user_events", "data-partition": "10"}, "5", "5"},
			{"streamjoin_ingest_consumer_lag_records", map[string]string{"data-topic": "user_events", "data-partition": "2"}, "0", "0"},
			{"streamjoin_ingest_freshness_seconds", map[string]string{"data-quantile": "0.5"}, "0.1", "100.0 ms"},
			{"streamjoin_ingest_freshness_seconds", map[string]string{"data-quantile": "0.99"}, "0.5", "500.0 ms"},
			{"streamjoin_ingest_freshness_seconds_count", nil, "100", "100"},
			{"streamjoin_watermark_seconds", map[string]string{"data-topic": "user_events"}, "1.6e+09", "2020-09-13 12:26:40Z"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := New(Config{}, &fakeUsers{}, nil, tc.gatherer, discard())
			if err != nil {
				t.Fatal(err)
			}
			elems := getStatus(t, srv)
			for _, w := range tc.want {
				got := metricElems(elems, w.metric, w.labels)
				if len(got) != 1 {
					t.Errorf("%s%v: %d elements, want 1", w.metric, w.labels, len(got))
					continue
				}
				value, hasValue := got[0].attrs["data-value"]
				if w.value == "" && (hasValue || !strings.HasPrefix(got[0].text, "—")) {
					t.Errorf("%s%v: data-value %q, text %q; want unknown, shown as —", w.metric, w.labels, value, got[0].text)
				}
				if w.value != "" && (value != w.value || got[0].text != w.text) {
					t.Errorf("%s%v: data-value %q, text %q; want %q, %q", w.metric, w.labels, value, got[0].text, w.value, w.text)
				}
			}
			if e, ok := byID(elems, "ingest-rate"); !ok || e.text != "—" || e.attrs["data-value"] != "" {
				t.Errorf("first load: ingest rate %+v, want — (nothing to measure a rate against yet)", e)
			}
		})
	}
}

// Lag rows are in partition order, numerically.
func TestStatusPageLagOrder(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{}, &fakeUsers{}, nil, fullRegistry(), discard())
	if err != nil {
		t.Fatal(err)
	}
	var partitions []string
	for _, e := range metricElems(getStatus(t, srv), "streamjoin_ingest_consumer_lag_records", nil) {
		partitions = append(partitions, e.attrs["data-partition"])
	}
	if !slices.Equal(partitions, []string{"2", "10"}) {
		t.Errorf("lag partitions in order %v, want [2 10]", partitions)
	}
}

// The rate is measured between page loads, over at least minRateWindow.
func TestRateSampler(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var r rateSampler
	for _, step := range []struct {
		total  float64
		at     time.Duration
		rate   float64
		window time.Duration
		ok     bool
	}{
		{100, 0, 0, 0, false},                      // the first reading: no rate yet
		{150, 500 * time.Millisecond, 0, 0, false}, // too close to the first
		{300, 2 * time.Second, 100, 2 * time.Second, true},
		{310, 2500 * time.Millisecond, 100, 2 * time.Second, true}, // too close: the last rate
		{500, 4 * time.Second, 100, 2 * time.Second, true},         // since the reading at 2s
		{10, 10 * time.Second, 0, 0, false},                        // the counter went back: start again
		{70, 13 * time.Second, 20, 3 * time.Second, true},
	} {
		rate, window, ok := r.observe(step.total, t0.Add(step.at))
		if ok != step.ok || (ok && (rate != step.rate || window != step.window)) {
			t.Errorf("reading %v at %s: %v over %s (ok %v), want %v over %s (ok %v)", step.total, step.at, rate, window, ok, step.rate, step.window, step.ok)
		}
	}
}

// A load a while after the first shows the records (valid and dead
// letters, not skipped) per second in between.
func TestStatusPageRate(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	records := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "streamjoin_ingest_records_total"}, []string{"topic", "outcome"})
	reg.MustRegister(records)
	srv, err := New(Config{}, &fakeUsers{}, nil, reg, discard())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	t0 := time.Now()
	if v := srv.statusView(req, t0); v.Rate.Known || v.RateMeasuring {
		t.Errorf("no records series: rate %+v, measuring %v; want unknown and not measuring", v.Rate, v.RateMeasuring)
	}
	records.WithLabelValues("user_events", "valid").Add(10)
	if v := srv.statusView(req, t0.Add(time.Second)); v.Rate.Known || !v.RateMeasuring {
		t.Errorf("first reading: rate %+v, measuring %v; want unknown and measuring", v.Rate, v.RateMeasuring)
	}
	records.WithLabelValues("user_events", "valid").Add(30)
	records.WithLabelValues("org_events", "dead_letter").Add(10)
	records.WithLabelValues("org_events", "skipped").Add(1000)
	v := srv.statusView(req, t0.Add(5*time.Second))
	if !v.Rate.Known || v.Rate.Raw != "10" || v.Rate.Text != "10.0 records/s" || v.RateWindow != "4s" {
		t.Errorf("after 4s and 40 records: rate %+v over %s, want 10 records/s over 4s", v.Rate, v.RateWindow)
	}
}

// listedDeadLetters is a DeadLetterLog that returns what it holds.
type listedDeadLetters []DeadLetter

func (l listedDeadLetters) RecentDeadLetters() []DeadLetter { return l }

// With a dead-letter log the page lists its entries, escaped; without one
// (the api role) it says they aren't available in this role.
func TestStatusPageDeadLetters(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		log         DeadLetterLog
		unavailable bool
		rows        int
	}{
		{"api role", nil, true, 0},
		{"none yet", listedDeadLetters{}, false, 0},
		{"two", listedDeadLetters{
			{Topic: "user_events", Partition: 1, Offset: 42, Code: "bad_timestamp", Reason: `bad_timestamp: received_at "<script>x</script>"`, At: at},
			{Topic: "org_events", Partition: 0, Offset: 7, Code: "missing_field", Reason: "missing_field: name", At: at},
		}, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := New(Config{}, &fakeUsers{}, nil, fullRegistry(), discard())
			if err != nil {
				t.Fatal(err)
			}
			if tc.log != nil {
				srv.ShowDeadLetters(tc.log)
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			body := rec.Body.String()
			elems := parsePage(t, rec.Body.Bytes())
			if _, ok := byID(elems, "dead-letters-unavailable"); ok != tc.unavailable {
				t.Errorf("'not available in this role' shown: %v, want %v", ok, tc.unavailable)
			}
			if got := metricElems(elems, "streamjoin_ingest_dead_letters_total", map[string]string{"data-code": "bad_timestamp"}); tc.unavailable != (len(got) == 0) {
				t.Errorf("dead letters by code shown: %d, want them shown only with a log", len(got))
			}
			if n := strings.Count(body, `<tr class="dead-letter"`); n != tc.rows {
				t.Errorf("%d dead-letter rows, want %d", n, tc.rows)
			}
			if tc.rows > 0 {
				for _, want := range []string{`data-offset="42"`, `received_at &#34;&lt;script&gt;x&lt;/script&gt;&#34;`, "missing_field: name", "2026-01-02 03:04:05Z"} {
					if !strings.Contains(body, want) {
						t.Errorf("the page lacks %s", want)
					}
				}
			}
		})
	}
}

// GET / is the page; other unknown paths stay 404 problems; HEAD has no
// body; the ingest role (probes only) serves it; the metrics group's token
// guards it.
func TestStatusPageRouting(t *testing.T) {
	t.Parallel()
	tokens := filepath.Join(t.TempDir(), "metrics-tokens")
	if err := os.WriteFile(tokens, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    Config
		probes bool
		method string
		path   string
		auth   string
		want   int
		ctype  string
	}{
		{"page", Config{}, false, http.MethodGet, "/", "", 200, "text/html; charset=utf-8"},
		{"head", Config{}, false, http.MethodHead, "/", "", 200, "text/html; charset=utf-8"},
		{"post", Config{}, false, http.MethodPost, "/", "", 405, "application/problem+json"},
		{"unknown path", Config{}, false, http.MethodGet, "/nope", "", 404, "application/problem+json"},
		{"ingest role", Config{}, true, http.MethodGet, "/", "", 200, "text/html; charset=utf-8"},
		{"no token", Config{MetricsTokenFile: tokens}, false, http.MethodGet, "/", "", 401, "application/problem+json"},
		{"metrics token", Config{MetricsTokenFile: tokens}, false, http.MethodGet, "/", "Bearer s3cret", 200, "text/html; charset=utf-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := New(tc.cfg, &fakeUsers{}, nil, prometheus.NewRegistry(), discard())
			if err != nil {
				t.Fatal(err)
			}
			if tc.probes {
				srv.ServeProbesOnly()
			}
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want || resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.want, tc.ctype)
			}
			CheckAgainstSpec(t, req, resp.StatusCode, resp.Header, body)
		})
	}
}
