package api

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The status page's reading of the gatherer. Nothing here turns an absent
// metric into a number: a family or series that is not gathered is a value
// whose Known is false, which the page shows as "—".

// value is one number of the page.
type value struct {
	Known bool
	Raw   string // the exact value, for data-value
	Text  string // as the page shows it
	v     float64
}

func known(v float64, text string) value {
	return value{Known: true, Raw: strconv.FormatFloat(v, 'g', -1, 64), Text: text, v: v}
}

// count is a known value shown as a plain number.
func count(v float64) value { return known(v, strconv.FormatFloat(v, 'f', -1, 64)) }

// seconds is a known duration in seconds, shown in ms below a second.
func seconds(v float64) value {
	if v < 1 {
		return known(v, strconv.FormatFloat(v*1000, 'f', 1, 64)+" ms")
	}
	return known(v, strconv.FormatFloat(v, 'f', 2, 64)+" s")
}

// row is one series of a family: its labels and its value.
type row struct {
	Labels map[string]string
	Value  value
}

// family is the series of one metric family; Present is false when the
// family was not gathered at all (no series), which the page shows as "—".
type family struct {
	Present bool
	Rows    []row
}

// families is one gathering, by family name.
type families map[string]*dto.MetricFamily

// gather reads g (nil: nothing). A gathering that fails in part still
// returns the families it could read; those it could not are absent.
func gather(g prometheus.Gatherer) families {
	out := families{}
	if g == nil {
		return out
	}
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// scalar returns a counter's or gauge's value.
func scalar(m *dto.Metric) (float64, bool) {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

func labelsOf(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// single is the value of a family of one unlabeled series.
func (fs families) single(name string) value {
	mf := fs[name]
	if mf == nil || len(mf.GetMetric()) != 1 {
		return value{}
	}
	if v, ok := scalar(mf.GetMetric()[0]); ok {
		return count(v)
	}
	return value{}
}

// series returns every series of a counter or gauge family, sorted by the
// values of the labels named in by, in that order.
func (fs families) series(name string, by ...string) family {
	mf := fs[name]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return family{}
	}
	f := family{Present: true}
	for _, m := range mf.GetMetric() {
		r := row{Labels: labelsOf(m)}
		if v, ok := scalar(m); ok {
			r.Value = count(v)
		}
		f.Rows = append(f.Rows, r)
	}
	slices.SortFunc(f.Rows, func(a, b row) int {
		for _, l := range by {
			if c := strings.Compare(a.Labels[l], b.Labels[l]); c != 0 {
				return c
			}
		}
		return 0
	})
	return f
}

// sortByTopicPartition sorts lag rows by topic, then partition as a number.
func sortByTopicPartition(f family) {
	slices.SortStableFunc(f.Rows, func(a, b row) int {
		if c := strings.Compare(a.Labels["topic"], b.Labels["topic"]); c != 0 {
			return c
		}
		pa, _ := strconv.Atoi(a.Labels["partition"])
		pb, _ := strconv.Atoi(b.Labels["partition"])
		return cmp.Compare(pa, pb)
	})
}

// sum adds the series of a counter family whose label is one of values;
// ok is false when no such series was gathered.
func (fs families) sum(name, label string, values ...string) (float64, bool) {
	mf := fs[name]
	if mf == nil {
		return 0, false
	}
	var total float64
	n := 0
	for _, m := range mf.GetMetric() {
		if !slices.Contains(values, labelsOf(m)[label]) {
			continue
		}
		if v, ok := scalar(m); ok {
			total += v
			n++
		}
	}
	return total, n > 0
}

// bucket is a histogram bucket: how many observations were at most upper.
type bucket struct {
	upper      float64
	cumulative float64
}

// quantiles returns the median and the 99th percentile of a histogram
// family (its series merged), and its count of observations. They are
// unknown when the family is absent; the quantiles are unknown too while
// it has no observation.
func (fs families) quantiles(name string) (p50, p99, n value) {
	mf := fs[name]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return value{}, value{}, value{}
	}
	byUpper := map[float64]float64{}
	var total float64
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			return value{}, value{}, value{}
		}
		total += float64(h.GetSampleCount())
		for _, b := range h.GetBucket() {
			byUpper[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	var buckets []bucket
	for u, c := range byUpper {
		if !math.IsInf(u, +1) {
			buckets = append(buckets, bucket{u, c})
		}
	}
	slices.SortFunc(buckets, func(a, b bucket) int { return cmp.Compare(a.upper, b.upper) })
	n = count(total)
	if q, ok := quantile(0.5, buckets, total); ok {
		p50 = seconds(q)
	}
	if q, ok := quantile(0.99, buckets, total); ok {
		p99 = seconds(q)
	}
	return p50, p99, n
}

// quantile estimates the q-quantile of total observations from the finite
// buckets (sorted by upper bound) as Prometheus's histogram_quantile does:
// linearly within the bucket the rank falls in, from 0 for the first
// bucket; a rank past the last finite bucket is its upper bound. ok is
// false when there is no observation.
func quantile(q float64, buckets []bucket, total float64) (float64, bool) {
	if total == 0 || len(buckets) == 0 {
		return 0, false
	}
	rank := q * total
	// The first bucket holding at least rank observations.
	i, _ := slices.BinarySearchFunc(buckets, rank, func(b bucket, r float64) int { return cmp.Compare(b.cumulative, r) })
	if i == len(buckets) {
		return buckets[len(buckets)-1].upper, true
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = buckets[i-1].upper, buckets[i-1].cumulative
	}
	upper := buckets[i].upper
	if i == 0 && upper <= 0 {
		return upper, true
	}
	inBucket := buckets[i].cumulative - below
	if inBucket == 0 {
		return upper, true
	}
	return lower + (upper-lower)*(rank-below)/inBucket, true
}

// watermarkText shows a watermark's Unix seconds as a UTC time.
func watermarkText(sec float64) string {
	return time.Unix(0, int64(sec*1e9)).UTC().Format("2006-01-02 15:04:05Z")
}
