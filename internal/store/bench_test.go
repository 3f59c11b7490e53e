package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
)

// BenchmarkWriteBatch measures the exactly-once write path: one transaction
// of 5,000 user events (raw log, staged upsert, fenced offset advance).
func BenchmarkWriteBatch(b *testing.B) {
	st := setup(b)
	ctx := context.Background()
	const n = 5000
	tp := store.TopicPartition{Topic: "u", Partition: 0}
	if _, err := st.ClaimOffsets(ctx, []store.TopicPartition{tp}); err != nil {
		b.Fatal(err)
	}
	var next *int64
	off := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		us := make([]event.User, n)
		for i := range us {
			us[i] = user(fmt.Sprintf("user-%d", (off+int64(i))%100000), event.UserUpdated, "name", "org", t0.Add(time.Duration(off+int64(i))*time.Microsecond), 0, off+int64(i))
		}
		to := off + n
		batch := &store.Batch{UserTopic: "u", OrgTopic: "o", Users: us, Offsets: []store.OffsetAdvance{{Topic: "u", Partition: 0, Generation: 1, From: next, To: to}}}
		if err := st.WriteBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
		off = to
		next = &to
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}
