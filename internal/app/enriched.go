package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamjoin/streamjoin/internal/store"
)

// relays reports whether any output goes through the outbox and its relay.
func (c Config) relays() bool {
	return c.Store.Changelog || c.Store.Enriched || c.Store.Activity
}

// registerOutputs exports the counts of st's committed batches for the
// event-time outputs that are on (cfg): organization versions too late to
// correct anything and the as-of join's corrections; user events too late
// for their window and the windows' corrections.
func registerOutputs(reg prometheus.Registerer, st *store.Store, cfg store.Config) {
	counter := func(name, help string, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v()) })
	}
	if cfg.Enriched {
		reg.MustRegister(
			counter("streamjoin_enriched_too_late_versions_total",
				"Organization versions committed more than --allowed-lateness behind the organization watermark: stored, and used by later events, but correcting no enriched event already emitted.",
				func() int64 { n, _ := st.EnrichedCounts(); return n }),
			counter("streamjoin_enriched_corrections_total",
				"Enriched events re-emitted as corrections, because an organization version within the allowed lateness changed their answer.",
				func() int64 { _, n := st.EnrichedCounts(); return n }),
		)
	}
	if cfg.Activity {
		reg.MustRegister(
			counter("streamjoin_activity_too_late_events_total",
				"User events whose activity window had ended more than --allowed-lateness behind the user watermark: in the state and the raw log, counted in no window.",
				func() int64 { n, _ := st.ActivityCounts(); return n }),
			counter("streamjoin_activity_corrections_total",
				"Activity windows re-emitted as corrections, because a late event within the allowed lateness changed them.",
				func() int64 { _, n := st.ActivityCounts(); return n }),
		)
	}
}
