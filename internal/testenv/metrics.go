package testenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ErrNoSeries is returned (wrapped) when a metric or one of its series is
// not in a scrape.
var ErrNoSeries = errors.New("no such series")

// Metrics is one scrape of a Prometheus text endpoint, by family name.
type Metrics map[string]*dto.MetricFamily

// ScrapeMetrics fetches url (a /metrics endpoint) and parses it. It blocks
// for at most timeout.
func ScrapeMetrics(url string, timeout time.Duration) (Metrics, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: status %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", url, err)
	}
	return mfs, nil
}

// Value returns the value of the one counter or gauge series of family name
// whose labels include every name=value in labels. It is an error wrapping
// ErrNoSeries when the family or such a series is absent, and an error when
// several series match: an absent series is never read as 0.
func (m Metrics) Value(name string, labels map[string]string) (float64, error) {
	mf, ok := m[name]
	if !ok {
		return 0, fmt.Errorf("metric %s: %w", name, ErrNoSeries)
	}
	var found []*dto.Metric
	for _, s := range mf.GetMetric() {
		if matches(s, labels) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("metric %s%s: %w (series present: %s)", name, render(labels), ErrNoSeries, seriesOf(mf))
	case 1:
	default:
		return 0, fmt.Errorf("metric %s%s: %d series match, want one", name, render(labels), len(found))
	}
	return value(name, mf, found[0])
}

func value(name string, mf *dto.MetricFamily, s *dto.Metric) (float64, error) {
	switch {
	case s.GetCounter() != nil:
		return s.GetCounter().GetValue(), nil
	case s.GetGauge() != nil:
		return s.GetGauge().GetValue(), nil
	case s.GetUntyped() != nil:
		return s.GetUntyped().GetValue(), nil
	}
	return 0, fmt.Errorf("metric %s is a %s, not a counter or gauge", name, mf.GetType())
}

// Sum returns the sum of the counter or gauge series of family name whose
// labels include every name=value in labels (nil: all of them). It is an
// error wrapping ErrNoSeries when the family or every such series is absent.
func (m Metrics) Sum(name string, labels map[string]string) (float64, error) {
	mf, ok := m[name]
	if !ok {
		return 0, fmt.Errorf("metric %s: %w", name, ErrNoSeries)
	}
	var sum float64
	n := 0
	for _, s := range mf.GetMetric() {
		if !matches(s, labels) {
			continue
		}
		v, err := value(name, mf, s)
		if err != nil {
			return 0, err
		}
		sum += v
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("metric %s%s: %w (series present: %s)", name, render(labels), ErrNoSeries, seriesOf(mf))
	}
	return sum, nil
}

// CounterOrZero is Value for a counter vector, whose series appear only once
// first incremented: a series absent from a family that is present, and
// whose series all carry every label name asked for, reads 0. A missing
// family, or a label name the family does not have, is still an error, so a
// renamed metric or label fails. A renamed label value cannot be told from
// an unused one: prefer Value wherever the series must exist.
func (m Metrics) CounterOrZero(name string, labels map[string]string) (float64, error) {
	v, err := m.Value(name, labels)
	if !errors.Is(err, ErrNoSeries) {
		return v, err
	}
	mf, ok := m[name]
	if !ok || len(mf.GetMetric()) == 0 {
		return 0, err
	}
	if mf.GetType() != dto.MetricType_COUNTER {
		return 0, fmt.Errorf("metric %s is a %s, not a counter", name, mf.GetType())
	}
	for _, s := range mf.GetMetric() {
		have := map[string]bool{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = true
		}
		for k := range labels {
			if !have[k] {
				return 0, fmt.Errorf("metric %s has no label %q (series present: %s)", name, k, seriesOf(mf))
			}
		}
	}
	return 0, nil
}

func matches(s *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range s.GetLabel() {
		if v, ok := labels[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

func render(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func seriesOf(mf *dto.MetricFamily) string {
	var out []string
	for _, s := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range s.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out = append(out, render(labels))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}
