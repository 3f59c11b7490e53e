package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
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

// BenchmarkWriteStateChangelog is the cost of the changelog in the state
// transaction: 5,000 user updates and 100 organization changes per write,
// with the changelog off and on (outbox rows, commit numbers, the lock).
// The outbox is emptied between writes, as the relay would.
func BenchmarkWriteStateChangelog(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			st := setup(b)
			if on {
				st = testenv.ChangelogStore(b)
			}
			ctx := context.Background()
			conn := testenv.Conn(b)
			const n = 5000
			off := int64(0)
			for b.Loop() {
				b.StopTimer()
				if _, err := conn.Exec(ctx, "DELETE FROM "+st.Schema()+".changelog_outbox; DELETE FROM "+st.Schema()+".changelog_commits"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				bt := &store.Batch{Users: make([]event.User, n)}
				for i := range bt.Users {
					bt.Users[i] = user(fmt.Sprintf("user-%d", (off+int64(i))%100000), event.UserUpdated, "name", fmt.Sprint("org-", (off+int64(i))%10000), t0.Add(time.Duration(off+int64(i))*time.Microsecond), 0, off+int64(i))
				}
				for i := range 100 {
					bt.Orgs = append(bt.Orgs, org(fmt.Sprint("org-", (off+int64(i)*97)%10000), fmt.Sprint("tier-", off%3), t0.Add(time.Duration(off+int64(i))*time.Microsecond), 1, off+int64(i)))
				}
				if err := st.WriteState(ctx, bt); err != nil {
					b.Fatal(err)
				}
				off += n
			}
			b.ReportMetric(float64(5100*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkWriteLogOutputs is the cost of the event-time outputs in the
// log transaction, for batches of 5,000 and of 200 user events (a steady
// stream's batches are small, and pay fixed costs), with the outputs off,
// the as-of join on (eager: every event emitted, and the versions'
// corrections), the windowed activity on, and both. The outbox is emptied
// between writes, as the relay would.
func BenchmarkWriteLogOutputs(b *testing.B) {
	for _, tc := range []struct {
		name               string
		enriched, activity bool
	}{{"off", false, false}, {"enriched", true, false}, {"activity", false, true}, {"both", true, true}} {
		for _, size := range []int{5000, 200} {
			b.Run(fmt.Sprintf("%s/%d", tc.name, size), func(b *testing.B) { benchmarkWriteLog(b, tc.enriched, tc.activity, size) })
		}
	}
}

// benchmarkWriteLog writes batches of n user events over 1,000
// organizations, and one organization event per 250 of them, through
// WriteLog with the outputs given on.
func benchmarkWriteLog(b *testing.B, enriched, activity bool, n int) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: testenv.PostgresDSN(b), Schema: testenv.Schema(b),
		Enriched: enriched, EnrichedEager: true, Activity: activity}, testenv.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	conn := testenv.Conn(b)
	orgs := max(1, n/250)
	off := int64(0)
	for b.Loop() {
		b.StopTimer()
		if _, err := conn.Exec(ctx, "DELETE FROM "+st.Schema()+".changelog_outbox; DELETE FROM "+st.Schema()+".changelog_commits"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		bt := &store.Batch{UserTopic: "u", OrgTopic: "o", Users: make([]event.User, n)}
		for i := range bt.Users {
			at := t0.Add(time.Duration(off+int64(i)) * time.Millisecond)
			bt.Users[i] = user(fmt.Sprintf("user-%d", (off+int64(i))%100000), event.UserUpdated, "name", fmt.Sprint("org-", (off+int64(i))%1000), at, 0, off+int64(i))
		}
		for i := range orgs {
			at := t0.Add(time.Duration(off+int64(i)*250) * time.Millisecond)
			bt.Orgs = append(bt.Orgs, org(fmt.Sprint("org-", (off+int64(i)*97)%1000), fmt.Sprint("tier-", off%3), at, 1, off+int64(i)))
		}
		if err := st.WriteLog(ctx, bt); err != nil {
			b.Fatal(err)
		}
		off += int64(n)
	}
	b.ReportMetric(float64((n+orgs)*b.N)/b.Elapsed().Seconds(), "events/s")
}
