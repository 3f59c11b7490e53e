package api

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// GET / is the status page: health and readiness, the ingest rate, the
// consumer lag, the freshness, the dead letters and the watermarks, in one
// server-rendered page that loads nothing from elsewhere and reloads itself
// every statusRefresh. Every number comes from the process's
// prometheus.Gatherer, the one /metrics serves, so the two agree; a metric
// that is absent reads "—" (unknown), never 0. Each number's element
// carries data-metric (the family), the series' labels as data-* and, when
// known, data-value (the exact value), for scripts and tests.

// statusRefresh is how often the page reloads itself.
const statusRefresh = 5 * time.Second

// minRateWindow is the shortest interval the ingest rate is measured over:
// a page load closer than that to the last sample shows the last rate.
const minRateWindow = time.Second

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
}).Parse(statusHTML))

// DeadLetter is one dead letter as the status page lists it.
type DeadLetter struct {
	Topic     string // the source topic
	Partition int32
	Offset    int64
	Code      string
	Reason    string
	At        time.Time // when its offset was committed
}

// DeadLetterLog is where the status page reads the latest dead letters
// from. RecentDeadLetters returns them newest first and must be safe for
// concurrent use; app adapts the ingest consumer to it.
type DeadLetterLog interface {
	RecentDeadLetters() []DeadLetter
}

// ShowDeadLetters makes the status page list log's latest dead letters.
// Without it (the api role, which ingests nothing) the page says that dead
// letters aren't available in this role. Call it before Handler or Run.
func (s *Server) ShowDeadLetters(log DeadLetterLog) { s.status.deadLetters = log }

// statusState is what the status page keeps between loads. Safe for
// concurrent use.
type statusState struct {
	deadLetters DeadLetterLog // nil: this role ingests nothing
	rate        rateSampler
}

// rateSampler turns a counter into a rate between page loads: it keeps the
// previous reading and its time, and each load at least minRateWindow after
// it measures the rate over the interval and keeps the new reading. With the
// page reloading every statusRefresh, that interval is the refresh period.
// Sampling on load rather than in a goroutine of its own means nothing runs
// while nobody looks and there is nothing to start or stop; the price is
// that the first load after a start has no rate yet ("—") and a page left
// unwatched for an hour shows the hour's average on its next load (the page
// says over what interval). Safe for concurrent use.
type rateSampler struct {
	mu     sync.Mutex
	prev   float64   // the counter at the last reading kept
	prevAt time.Time // zero: no reading yet
	rate   float64
	window time.Duration // 0: no rate measured yet
}

// observe takes a reading of the counter and returns the rate over the last
// measured window; ok is false until there is one. A counter that went
// backwards (a new registry) starts the measure again.
func (r *rateSampler) observe(total float64, now time.Time) (rate float64, window time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch d := now.Sub(r.prevAt); {
	case r.prevAt.IsZero() || total < r.prev:
		r.prev, r.prevAt, r.window = total, now, 0
	case d >= minRateWindow:
		r.rate, r.window = (total-r.prev)/d.Seconds(), d
		r.prev, r.prevAt = total, now
	}
	return r.rate, r.window, r.window > 0
}

// statusPage serves GET /.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r, s) {
		return
	}
	v := s.statusView(r, time.Now())
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, v); err != nil {
		s.fail(w, r, fmt.Errorf("rendering the status page: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
	h.Set("Cache-Control", "no-store")
	writeStatic(w, "text/html; charset=utf-8", buf.Bytes())
}

// statusView gathers what the page shows.
func (s *Server) statusView(r *http.Request, now time.Time) statusData {
	v := statusData{Now: now, Refresh: int(statusRefresh / time.Second), Ready: true}
	reason, err := s.readiness(r.Context())
	if reason != "" {
		v.Ready, v.ReadyReason = false, reason
	}
	_ = err // /ready logs it; the page shows the reason alone
	fams := gather(s.gatherer)
	v.ReadyGauge = fams.single("streamjoin_ready")
	v.Records = fams.series("streamjoin_ingest_records_total", "topic", "outcome")
	if total, ok := fams.sum("streamjoin_ingest_records_total", "outcome", "valid", "dead_letter"); ok {
		if rate, window, ok := s.status.rate.observe(total, now); ok {
			v.Rate = known(rate, strconv.FormatFloat(rate, 'f', 1, 64)+" records/s")
			v.RateWindow = window.Round(100 * time.Millisecond).String()
		} else {
			v.RateMeasuring = true
		}
	}
	v.Lag = fams.series("streamjoin_ingest_consumer_lag_records", "topic", "partition")
	sortByTopicPartition(v.Lag)
	v.FreshnessP50, v.FreshnessP99, v.FreshnessCount = fams.quantiles("streamjoin_ingest_freshness_seconds")
	v.DeadLettersAvailable = s.status.deadLetters != nil
	v.DeadByCode = fams.series("streamjoin_ingest_dead_letters_total", "topic", "code")
	if v.DeadLettersAvailable {
		v.Recent = s.status.deadLetters.RecentDeadLetters()
	}
	v.Watermarks = fams.series("streamjoin_watermark_seconds", "topic")
	for i := range v.Watermarks.Rows {
		if wm := &v.Watermarks.Rows[i]; wm.Value.Known {
			wm.Value.Text = watermarkText(wm.Value.v)
		}
	}
	return v
}

// statusData is the template's input.
type statusData struct {
	Now                  time.Time
	Refresh              int // seconds
	Ready                bool
	ReadyReason          string
	ReadyGauge           value
	Records              family
	Rate                 value
	RateWindow           string
	RateMeasuring        bool // the records are counted, the rate not measured yet
	Lag                  family
	FreshnessP50         value
	FreshnessP99         value
	FreshnessCount       value
	DeadLettersAvailable bool
	DeadByCode           family
	Recent               []DeadLetter
	Watermarks           family
}
