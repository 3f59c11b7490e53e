package ingest

import (
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// observeFreshness observes, for every valid record of b, the time from its
// Kafka timestamp to at, when b's log (and so the batch) committed to
// PostgreSQL: streamjoin_ingest_freshness_seconds, one observation per
// record. The timestamp is the producer's (CreateTime) unless the topic
// uses LogAppendTime, so a producer's clock ahead of this one reads as
// fresher than it was; a negative time counts as 0.
func (m *Metrics) observeFreshness(b *store.Batch, at time.Time) {
	for i := range b.Users {
		m.freshness.Observe(max(at.Sub(b.Users[i].LogTime).Seconds(), 0))
	}
	for i := range b.Orgs {
		m.freshness.Observe(max(at.Sub(b.Orgs[i].LogTime).Seconds(), 0))
	}
}
