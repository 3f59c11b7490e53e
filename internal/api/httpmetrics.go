package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// readyGaugeTimeout bounds the readiness check a scrape of streamjoin_ready
// runs (a PostgreSQL ping): a database that hangs reads as not ready
// rather than holding the scrape.
const readyGaugeTimeout = time.Second

// httpMetrics are the API's request metrics. Their route label is the
// mux pattern that matched ("/users/{name}"), never the path, so that the
// series stay bounded whatever clients ask for; a request no route matches
// (a 404, or a 503 answered before routing) is "other". Methods outside
// the standard ones are "other" too.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// RegisterMetrics registers with reg the HTTP request metrics
// (streamjoin_http_requests_total, streamjoin_http_request_duration_seconds)
// and streamjoin_ready. Call it at most once, before Handler; a Server
// without it serves no request metrics.
//
// streamjoin_ready is computed on each scrape by the same check /ready
// answers with (readiness), bounded by readyGaugeTimeout, rather than by a
// loop: it is then exactly as current as the scrape, costs nothing between
// scrapes, and cannot drift from /ready. Unlike /ready, it logs nothing.
func (s *Server) RegisterMetrics(reg prometheus.Registerer) error {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamjoin_http_requests_total",
			Help: "HTTP requests answered, by route (the mux pattern; other: none matched), method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "streamjoin_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route (the mux pattern; other: none matched).",
			// 0.5 ms to 8 s.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}, []string{"route"}),
	}
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "streamjoin_ready",
		Help: "1 when /ready would answer 200, else 0; checked at each scrape (a PostgreSQL ping, at most 1s).",
	}, s.readyValue)
	for _, c := range []prometheus.Collector{m.requests, m.duration, ready} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	s.httpMetrics = m
	return nil
}

// readyValue is streamjoin_ready's value: 1 when readiness finds nothing
// missing.
func (s *Server) readyValue() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), readyGaugeTimeout)
	defer cancel()
	if reason, _ := s.readiness(ctx); reason == "" {
		return 1
	}
	return 0
}

// instrument counts and times each request next answers, under the
// pattern the mux routed it to: next passes the request to the mux
// unchanged, and the mux sets its Pattern before calling the route's
// handler. A request answered before routing (a 503 of the in-flight
// limit) has no pattern: "other". Without RegisterMetrics it returns next.
//
// Each route's series are resolved once, on their first use
// (routeObservers), rather than looked up by their label values on every
// request. Safe for concurrent use.
func (s *Server) instrument(next http.Handler) http.Handler {
	m := s.httpMetrics
	if m == nil {
		return next
	}
	// Read-only once built: looked up without a lock.
	byRoute := map[string]*routeObservers{"other": {route: "other"}}
	for _, rt := range s.routes() {
		l := routeLabel(rt.muxPattern())
		byRoute[l] = &routeObservers{route: l}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		record := func(status int) {
			o := byRoute[routeLabel(r.Pattern)]
			if o == nil { // a pattern not in routes(): cannot happen, but never lose a count
				o = &routeObservers{route: routeLabel(r.Pattern)}
			}
			o.observe(m, r.Method, status, time.Since(start))
		}
		defer func() {
			if p := recover(); p != nil {
				// An aborted response (recoverPanics re-panics
				// http.ErrAbortHandler): the client got no whole answer.
				record(http.StatusInternalServerError)
				panic(p)
			}
		}()
		next.ServeHTTP(sw, r)
		record(sw.code())
	})
}

// routeObservers are one route's series, resolved from the vectors on
// first use: its duration histogram, and its counter of GET 200s (nearly
// every request). Other method and status pairs are looked up by label.
// Nothing is created before it is observed, so /metrics shows only series
// that counted something.
type routeObservers struct {
	route        string
	durationOnce sync.Once
	duration     prometheus.Observer
	get200Once   sync.Once
	get200       prometheus.Counter
}

func (o *routeObservers) observe(m *httpMetrics, method string, status int, d time.Duration) {
	if method == http.MethodGet && status == http.StatusOK {
		o.get200Once.Do(func() { o.get200 = m.requests.WithLabelValues(o.route, method, "200") })
		o.get200.Inc()
	} else {
		m.requests.WithLabelValues(o.route, methodLabel(method), strconv.Itoa(status)).Inc()
	}
	o.durationOnce.Do(func() { o.duration = m.duration.WithLabelValues(o.route) })
	o.duration.Observe(d.Seconds())
}

// routeLabel is the route label of a mux pattern: the pattern, "/" for the
// root alone ("/{$}"), and "other" for the catch-all "/" or no match.
func routeLabel(pattern string) string {
	switch pattern {
	case "", "/":
		return "other"
	case "/{$}":
		return "/"
	}
	return strings.TrimSuffix(pattern, "{$}")
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// statusWriter remembers the status of the response written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// code is the status sent: 200 when the handler wrote nothing.
func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
