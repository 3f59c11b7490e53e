package changelog

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamjoin/streamjoin/internal/store"
)

// metrics are the relay's series. Each is created at start, so a scrape
// shows 0 rather than nothing.
type metrics struct {
	records prometheus.Counter
	leader  prometheus.Gauge
	latency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamjoin_changelog_records_total",
			Help: "Changelog records produced in committed Kafka transactions.",
		}),
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

// observe counts rows, committed at now.
func (m *metrics) observe(rows []store.OutboxRow, now time.Time) {
	m.records.Add(float64(len(rows)))
	last := time.Time{}
	for i := range rows {
		// One observation per state commit, not per row.
		if at := rows[i].CommittedAt; !at.Equal(last) {
			m.latency.Observe(now.Sub(at).Seconds())
			last = at
		}
	}
}
