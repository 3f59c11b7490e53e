package changelog

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamjoin/streamjoin/internal/store"
)

// metrics are the relay's series. Each is created at start, so a scrape
// shows 0 rather than nothing.
type metrics struct {
	records *prometheus.CounterVec
	leader  prometheus.Gauge
	latency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamjoin_changelog_records_total",
			Help: "Records the outbox relay produced in committed Kafka transactions, by output topic (the changelog, the enriched topic, the activity topic).",
		}, []string{"topic"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamjoin_changelog_leader",
			Help: "1 while this process leads the changelog relay, else 0.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "streamjoin_changelog_latency_seconds",
			Help:    "From the state commit to the commit of the Kafka transaction holding the record.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.leader, m.latency)
	}
	return m
}

// init creates the records series of every output topic at 0.
func (m *metrics) init(topics []string) {
	for _, t := range topics {
		m.records.WithLabelValues(t)
	}
}

// observe counts rows, committed at now, by topic (topicOf).
func (m *metrics) observe(rows []store.OutboxRow, now time.Time, topicOf func(*store.OutboxRow) string) {
	counts := map[string]int{}
	for i := range rows {
		counts[topicOf(&rows[i])]++
	}
	for t, n := range counts {
		if t != "" {
			m.records.WithLabelValues(t).Add(float64(n))
		}
	}
	last := time.Time{}
	for i := range rows {
		// One observation per state commit, not per row.
		if at := rows[i].CommittedAt; !at.Equal(last) {
			m.latency.Observe(now.Sub(at).Seconds())
			last = at
		}
	}
}
