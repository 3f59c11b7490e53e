package testenv_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	records := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "records_total", Help: "h"}, []string{"topic", "outcome"})
	empty := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "empty_total", Help: "h"}, []string{"class"})
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "up", Help: "h"})
	reg.MustRegister(records, empty, up)
	records.WithLabelValues("a", "valid").Add(3)
	records.WithLabelValues("b", "valid").Add(0)
	up.Set(1)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	m, err := testenv.ScrapeMetrics(srv.URL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	const fails = -1
	tests := []struct {
		name     string
		metric   string
		labels   map[string]string
		value    float64 // fails: an error
		orZero   float64 // the same for CounterOrZero
		sum      float64 // the same for Sum
		noSeries bool    // Value's error wraps ErrNoSeries
	}{
		{name: "counter series", metric: "records_total", labels: map[string]string{"topic": "a", "outcome": "valid"}, value: 3, orZero: 3, sum: 3},
		{name: "series at zero", metric: "records_total", labels: map[string]string{"topic": "b", "outcome": "valid"}, value: 0, orZero: 0, sum: 0},
		{name: "gauge", metric: "up", value: 1, orZero: 1, sum: 1},
		{name: "unused label value", metric: "records_total", labels: map[string]string{"topic": "a", "outcome": "skipped"}, value: fails, orZero: 0, sum: fails, noSeries: true},
		{name: "renamed metric", metric: "records", labels: map[string]string{"topic": "a", "outcome": "valid"}, value: fails, orZero: fails, sum: fails, noSeries: true},
		{name: "renamed label", metric: "records_total", labels: map[string]string{"topic": "a", "result": "valid"}, value: fails, orZero: fails, sum: fails, noSeries: true},
		{name: "vector never incremented", metric: "empty_total", labels: map[string]string{"class": "x"}, value: fails, orZero: fails, sum: fails, noSeries: true},
		{name: "several series match", metric: "records_total", labels: map[string]string{"outcome": "valid"}, value: fails, orZero: fails, sum: 3},
		{name: "whole family", metric: "records_total", value: fails, orZero: fails, sum: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := m.Value(tt.metric, tt.labels)
			check(t, "Value", v, err, tt.value)
			if got := errors.Is(err, testenv.ErrNoSeries); got != tt.noSeries {
				t.Errorf("Value: errors.Is(%v, ErrNoSeries) = %v, want %v", err, got, tt.noSeries)
			}
			v, err = m.CounterOrZero(tt.metric, tt.labels)
			check(t, "CounterOrZero", v, err, tt.orZero)
			v, err = m.Sum(tt.metric, tt.labels)
			check(t, "Sum", v, err, tt.sum)
		})
	}
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	if _, err := testenv.ScrapeMetrics(notFound.URL, 5*time.Second); err == nil {
		t.Error("ScrapeMetrics of a 404: no error")
	}
}

func check(t *testing.T, what string, v float64, err error, want float64) {
	t.Helper()
	switch {
	case want < 0 && err == nil:
		t.Errorf("%s = %v, want an error", what, v)
	case want >= 0 && err != nil:
		t.Errorf("%s: %v, want %v", what, err, want)
	case want >= 0 && v != want:
		t.Errorf("%s = %v, want %v", what, v, want)
	}
}
