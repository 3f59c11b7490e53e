package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamjoin/streamjoin/internal/store"
)

// registerEnriched exports the as-of join's counts of st's committed
// batches: organization versions too late to correct anything, and the
// corrections emitted.
func registerEnriched(reg prometheus.Registerer, st *store.Store) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "streamjoin_enriched_too_late_versions_total",
			Help: "Organization versions committed more than --allowed-lateness behind the organization watermark: stored, and used by later events, but correcting no enriched event already emitted.",
		}, func() float64 { n, _ := st.EnrichedCounts(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "streamjoin_enriched_corrections_total",
			Help: "Enriched events re-emitted as corrections, because an organization version within the allowed lateness changed their answer.",
		}, func() float64 { _, n := st.EnrichedCounts(); return float64(n) }),
	)
}
