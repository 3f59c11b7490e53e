package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
)

// fanoutOrg is the organization of the fan-out measurement's users.
const fanoutOrg = "fanout-org"

// fanout measures the changelog's fan-out: an organization with
// FanoutUsers live users changes tier. It reports the tier change's state
// transaction (the fan-out happens inside it, in PostgreSQL), the time
// until the relay has produced every record, and the ingest stall: the
// longest a concurrent stream of small user writes (other users, other
// organization) waited while the tier change ran, beside that stream's
// median before it.
func (b *bencher) fanout(ctx context.Context, run int, r *RunResult) error {
	schema := fmt.Sprintf("bench_fanout_%d", run)
	if err := b.dropSchema(ctx, schema); err != nil {
		return err
	}
	defer b.dropSchema(ctx, schema)
	st, err := store.Open(ctx, store.Config{DSN: b.dsn, Schema: schema, MaxConns: 8, Changelog: true}, b.quiet)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	t0 := b.cfg.Workload.Start
	str := func(s string) *string { return &s }
	if err := st.WriteState(ctx, &store.Batch{Orgs: []event.Org{{Name: fanoutOrg, Tier: str("silver"), CreatedAt: t0, LogTime: t0}}}); err != nil {
		return err
	}
	n := b.cfg.FanoutUsers
	for lo := 0; lo < n; lo += 10_000 {
		bt := &store.Batch{}
		for i := lo; i < min(n, lo+10_000); i++ {
			bt.Users = append(bt.Users, event.User{ID: fmt.Sprint("fan-", i), Type: event.UserCreated, Username: str(fmt.Sprint("fan", i)), OrganizationName: str(fanoutOrg), ReceivedAt: t0, LogTime: t0, Pos: event.Position{Offset: int64(i)}})
		}
		if err := st.WriteState(ctx, bt); err != nil {
			return fmt.Errorf("loading the organization's users: %w", err)
		}
	}
	conn, stopRelay, err := b.relayFromEmptyOutbox(ctx, st, schema, changelog.Config{Topic: changelogTopic})
	if err != nil {
		return err
	}
	defer stopRelay()

	// The concurrent stream: 100 users per write, back to back.
	spans, err := concurrentWrites(ctx, func(i int) error {
		bt := &store.Batch{}
		for j := range 100 {
			at := t0.Add(time.Duration(i+1) * time.Millisecond)
			bt.Users = append(bt.Users, event.User{ID: fmt.Sprint("other-", j), Type: event.UserUpdated, Username: str("other"), OrganizationName: str("other-org"), ReceivedAt: at, LogTime: at, Pos: event.Position{Offset: int64(i)}})
		}
		return st.WriteState(ctx, bt)
	}, func() (time.Time, time.Time, error) {
		start := time.Now()
		err := st.WriteState(ctx, &store.Batch{Orgs: []event.Org{{Name: fanoutOrg, Tier: str("gold"), CreatedAt: t0.Add(time.Second), LogTime: t0, Pos: event.Position{Offset: 1}}}})
		return start, time.Now(), err
	})
	if err != nil {
		return fmt.Errorf("fan-out: %w", err)
	}
	// With the concurrent stream stopped, until everything is produced.
	if err := waitOutboxEmpty(ctx, conn, schema, nil, 5*time.Minute); err != nil {
		return fmt.Errorf("fan-out: %w", err)
	}
	r.FanoutRelayed = spans.sinceStart()
	r.FanoutTxn, r.FanoutStall, r.FanoutWriteP50 = spans.txn, spans.stall, spans.beforeP50
	return nil
}
