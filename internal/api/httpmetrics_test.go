package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// gather is what reg holds now, by family name.
func gather(t *testing.T, reg *prometheus.Registry) testenv.Metrics {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.Metrics{}
	for _, mf := range mfs {
		m[mf.GetName()] = mf
	}
	return m
}

// TestHTTPMetricsLabelRoutesByPattern: requests are counted under the mux
// pattern that served them, never their path; what no route matches is
// "other", and so is a method outside the standard ones.
func TestHTTPMetricsLabelRoutesByPattern(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0"}, testenv.Store(t), nil, reg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	for _, req := range []struct{ method, path string }{
		{"GET", "/users/Snake"}, {"GET", "/users/Big%20Boss"}, {"HEAD", "/users/x"},
		{"GET", "/users/by-id/u1"}, {"DELETE", "/users/x"}, {"BREW", "/users/x"},
		{"GET", "/no/such/thing"}, {"GET", "/nor/this"}, {"GET", "/health"},
	} {
		r, err := http.NewRequest(req.method, ts.URL+req.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	m := gather(t, reg)
	for _, want := range []struct {
		route, method, status string
		n                     float64
	}{
		{"/users/{name}", "GET", "200", 2},
		{"/users/{name}", "HEAD", "200", 1},
		{"/users/{name}", "DELETE", "405", 1},
		{"/users/{name}", "other", "405", 1},
		{"/users/by-id/{id}", "GET", "404", 1},
		{"other", "GET", "404", 2},
		{"/health", "GET", "200", 1},
	} {
		labels := map[string]string{"route": want.route, "method": want.method, "status": want.status}
		if n, err := m.Value("streamjoin_http_requests_total", labels); err != nil || n != want.n {
			t.Errorf("requests %v = %v (%v), want %v", labels, n, err, want.n)
		}
	}
	// Every route label is one of the patterns asked for, or "other".
	patterns := map[string]bool{"/users/{name}": true, "/users/by-id/{id}": true, "/health": true, "other": true}
	for _, name := range []string{"streamjoin_http_requests_total", "streamjoin_http_request_duration_seconds"} {
		for _, s := range m[name].GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "route" && !patterns[l.GetValue()] {
					t.Errorf("%s has route label %q: want a pattern or other", name, l.GetValue())
				}
			}
		}
	}
	h, err := m.Value("streamjoin_http_request_duration_seconds", map[string]string{"route": "/users/{name}"})
	if err == nil {
		t.Errorf("duration read as a counter or gauge (%v): want a histogram", h)
	}
	var count uint64
	for _, s := range m["streamjoin_http_request_duration_seconds"].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == "route" && l.GetValue() == "/users/{name}" {
				count += s.GetHistogram().GetSampleCount()
			}
		}
	}
	if count != 5 {
		t.Errorf("duration observations for /users/{name} = %d, want 5", count)
	}
}

// TestReadyGauge: streamjoin_ready follows /ready's answer through a start,
// an outage and a stop.
func TestReadyGauge(t *testing.T) {
	t.Parallel()
	s := newReadyServer(t, testenv.Logger(t))
	reg := prometheus.NewRegistry()
	if err := s.srv.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name   string
		change func()
		want   float64
	}{
		{"schema not migrated", func() {}, 0},
		{"migrated, not joined", func() { close(s.migrated) }, 0},
		{"joined", func() { s.joined.Store(true) }, 1},
		{"postgres lost", func() { s.users.isDown.Store(true) }, 0},
		{"postgres back", func() { s.users.isDown.Store(false) }, 1},
		{"shutting down", func() { s.srv.Stopping() }, 0},
	} {
		step.change()
		got, err := gather(t, reg).Value("streamjoin_ready", nil)
		if err != nil || got != step.want {
			t.Errorf("%s: streamjoin_ready = %v (%v), want %v", step.name, got, err, step.want)
		}
		if status, _ := probe(t, s.base); (status == http.StatusOK) != (got == 1) {
			t.Errorf("%s: /ready answers %d while streamjoin_ready = %v", step.name, status, got)
		}
	}
}
