package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamjoin/streamjoin/internal/store"
)

// Metrics are the consumer's Prometheus metrics. Create them once per
// registry with NewMetrics; they are safe for concurrent use.
type Metrics struct {
	records      *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	batches      prometheus.Counter
	batchSeconds prometheus.Histogram
	writeErrors  *prometheus.CounterVec
	// Watermarks (watermarks.go), by topic, once a topic has one.
	eventTime     *prometheus.GaugeVec
	watermark     *prometheus.GaugeVec
	watermarkLag  *prometheus.GaugeVec
	watermarkIdle *prometheus.GaugeVec
	idleMarks     prometheus.Counter
	// Lag (lag.go) and freshness (freshness.go).
	lag       *prometheus.GaugeVec
	freshness prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamjoin_ingest_records_total",
			Help: "Records whose offsets were committed, by topic and outcome (valid, dead_letter), and records skipped as already committed or not owned (skipped).",
		}, []string{"topic", "outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamjoin_ingest_dead_letters_total",
			Help: "Dead letters whose offsets were committed, by source topic and reason code.",
		}, []string{"topic", "code"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamjoin_ingest_batches_total",
			Help: "Batches committed to PostgreSQL.",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "streamjoin_ingest_batch_seconds",
			Help:    "Time from poll to commit of a batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamjoin_ingest_write_errors_total",
			Help: "Failed batch writes and ownership checks, by class (conflict, unavailable, fenced, permanent, canceled), failed dead-letter produces (dead_letter_produce), and dead-letter produces refused because another producer took the partition's transactional id over (dead_letter_fenced).",
		}, []string{"class"}),
		eventTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamjoin_event_time_seconds",
			Help: "Greatest event time committed from the topic (received_at, created_at), Unix seconds.",
		}, []string{"topic"}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamjoin_watermark_seconds",
			Help: "The topic's event-time watermark, Unix seconds: every event before it has arrived, within --max-out-of-orderness.",
		}, []string{"topic"}),
		watermarkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamjoin_watermark_lag_seconds",
			Help: "Wall clock minus the topic's watermark.",
		}, []string{"topic"}),
		watermarkIdle: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamjoin_watermark_idle",
			Help: "1 when every partition of the topic is idle (caught up, no records for --idle-timeout), else 0.",
		}, []string{"topic"}),
		idleMarks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamjoin_ingest_idle_marks_total",
			Help: "Partitions this process marked idle.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamjoin_ingest_consumer_lag_records",
			Help: "Records between the offset committed to PostgreSQL and the partition's end (its last stable offset: the consumer reads read_committed), for each partition this member owns, from the ends its fetches report; updated by every poll and every commit, removed when the partition is revoked. A caught-up partition of a transactional topic reads 1 (the commit marker).",
		}, []string{"topic", "partition"}),
		freshness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamjoin_ingest_freshness_seconds",
			Help: "From a valid record's Kafka timestamp to the PostgreSQL commit of its batch, one observation per record (dead letters are not observed).",
			// 1 ms to 65 s.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.deadLetters, m.batches, m.batchSeconds, m.writeErrors,
			m.eventTime, m.watermark, m.watermarkLag, m.watermarkIdle, m.idleMarks, m.lag, m.freshness)
	}
	return m
}

// init creates every series the consumer can report for its topics at 0, so
// that a scrape shows them before the first event and a reader can tell an
// absent metric from one that never moved.
func (m *Metrics) init(topics ...string) {
	for _, t := range topics {
		for _, o := range []string{"valid", "dead_letter", "skipped"} {
			m.records.WithLabelValues(t, o)
		}
	}
	for _, class := range []store.Class{store.Permanent, store.Conflict, store.Unavailable, store.Fenced, store.Canceled} {
		m.writeErrors.WithLabelValues(class.String())
	}
	m.writeErrors.WithLabelValues("dead_letter_produce")
	m.writeErrors.WithLabelValues("dead_letter_fenced")
}
