package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

const (
	usersTopic = "u"
	orgsTopic  = "o"
)

// feeder writes batches to an Enriched store as the consumer would: each
// through WriteBatch with the fenced advance of the partitions it covers,
// carrying their greatest event time (the watermarks' input).
type feeder struct {
	t       *testing.T
	windows bool // emitted returns activity windows, not enriched events
	cfg     store.Config
	st      *store.Store
	gen     map[store.TopicPartition]int64
	// activityLateBefore: the too-late events the stores before the last
	// restart counted (a Store's counts start at 0).
	activityLateBefore int64
	next               map[store.TopicPartition]*int64
}

func newFeeder(t *testing.T, opts store.Config) *feeder {
	t.Helper()
	opts.DSN, opts.Schema, opts.Enriched = testenv.PostgresDSN(t), testenv.Schema(t), true
	ctx := context.Background()
	st, err := store.Open(ctx, opts, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := &feeder{t: t, cfg: opts, st: st, gen: map[store.TopicPartition]int64{}, next: map[store.TopicPartition]*int64{}}
	tps := []store.TopicPartition{{Topic: usersTopic, Partition: 0}, {Topic: usersTopic, Partition: 1}, {Topic: orgsTopic, Partition: 0}}
	for tp, c := range claim(t, st, tps...) {
		f.gen[tp], f.next[tp] = c.Generation, c.Next
	}
	return f
}

// restart closes the store and opens another on the same schema, as a
// restarted process would: everything it goes on from is in PostgreSQL.
func (f *feeder) restart() {
	f.t.Helper()
	late, _ := f.st.ActivityCounts()
	f.activityLateBefore += late
	f.st.Close()
	st, err := store.Open(context.Background(), f.cfg, testenv.Logger(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(st.Close)
	f.st = st
}

// write commits users and orgs (their positions already set) as one batch.
func (f *feeder) write(users []event.User, orgs []event.Org) {
	f.t.Helper()
	b := &store.Batch{UserTopic: usersTopic, OrgTopic: orgsTopic, Users: users, Orgs: orgs}
	type span struct {
		to  int64
		max time.Time
	}
	spans := map[store.TopicPartition]*span{}
	note := func(tp store.TopicPartition, off int64, at time.Time) {
		s := spans[tp]
		if s == nil {
			s = &span{}
			spans[tp] = s
		}
		s.to = max(s.to, off+1)
		if at.After(s.max) {
			s.max = at
		}
	}
	for _, u := range users {
		note(store.TopicPartition{Topic: usersTopic, Partition: u.Pos.Partition}, u.Pos.Offset, u.ReceivedAt)
	}
	for _, o := range orgs {
		note(store.TopicPartition{Topic: orgsTopic, Partition: o.Pos.Partition}, o.Pos.Offset, o.CreatedAt)
	}
	for tp, s := range spans {
		b.Offsets = append(b.Offsets, store.OffsetAdvance{Topic: tp.Topic, Partition: tp.Partition, Generation: f.gen[tp], From: f.next[tp], To: s.to, MaxEventTime: s.max})
	}
	if err := f.st.WriteBatch(context.Background(), b); err != nil {
		f.t.Fatal(err)
	}
	for tp, s := range spans {
		f.next[tp] = i64(s.to)
	}
}

// tick advances the watermarks (out-of-orderness 0) and releases what
// they let go, as the consumer's watermark loop does.
func (f *feeder) tick() {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.st.AdvanceWatermarks(ctx, 0); err != nil {
		f.t.Fatal(err)
	}
	for {
		n, err := f.st.ReleaseEnriched(ctx, orgsTopic, 7)
		if err != nil {
			f.t.Fatal(err)
		}
		if n < 7 {
			return
		}
	}
}

// idle marks the organization partition idle (if it is not already).
func (f *feeder) idle() {
	f.t.Helper()
	tp := store.TopicPartition{Topic: orgsTopic, Partition: 0}
	marked, err := f.st.MarkIdle(context.Background(), []store.IdleMark{{Topic: tp.Topic, Partition: tp.Partition, Generation: f.gen[tp], Next: f.next[tp], Since: time.Now()}})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(marked) > 1 {
		f.t.Fatalf("marking %v idle marked %v", tp, marked)
	}
}

// emitted reads and empties the outbox in relay order, through the
// relay's own reads (LeadChangelog, Next, Delete), and returns its
// enriched events (or, if f.windows, its activity windows).
func (f *feeder) emitted() []store.OutboxRow {
	f.t.Helper()
	ctx := context.Background()
	// The previous call's session may still be ending on the server,
	// holding the relay's lock for a moment.
	ob, err := f.st.LeadChangelog(ctx, time.Minute)
	for deadline := time.Now().Add(10 * time.Second); errors.Is(err, store.ErrNotLeader) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		ob, err = f.st.LeadChangelog(ctx, time.Minute)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	defer ob.Close()
	var out []store.OutboxRow
	var pos store.OutboxPosition
	for {
		rows, err := ob.Next(ctx, pos, 2)
		if err != nil {
			f.t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			if r.Event == nil && r.Window == nil {
				f.t.Fatalf("a profile in the outbox of a store without a changelog: %+v", r)
			}
			if (r.Event != nil) == f.windows {
				continue // the other output's
			}
			out = append(out, r)
		}
		pos = rows[len(rows)-1].Pos
	}
	if err := ob.Delete(ctx, pos); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// answer is an enriched event as the tests compare it: its key, whether a
// correction, and the organization version it names.
func answer(r store.OutboxRow) string {
	e := r.Event
	s := fmt.Sprintf("%s/%d/%d=%s", e.Topic, e.Partition, e.Offset, deref(e.OrganizationTier))
	if e.OrgValidFrom != nil {
		s += "@" + e.OrgValidFrom.Sub(t0).String()
	}
	if e.Correction {
		s += " (correction)"
	}
	return s
}

func answers(rows []store.OutboxRow) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, answer(r))
	}
	return out
}

// TestAsOfJoinWaitsAndCorrects walks the as-of join through the rules of
// docs/event-time.md: an event waits for the organization watermark, is
// emitted with the version in force at its time, is corrected by a late
// version within the allowed lateness and not by one beyond it.
func TestAsOfJoinWaitsAndCorrects(t *testing.T) {
	t.Parallel()
	f := newFeeder(t, store.Config{AllowedLateness: 5 * time.Second})
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var uoff, ooff int64
	u := func(id string, s int) event.User {
		uoff++
		return user(id, event.UserCreated, id, "Acme", at(s), 0, uoff)
	}
	o := func(tier string, s int) event.Org {
		ooff++
		return org("Acme", tier, at(s), 0, ooff)
	}
	steps := []struct {
		name  string
		users []event.User
		orgs  []event.Org
		tick  bool
		want  []string
		late  int64
	}{
		{name: "no organization watermark yet: the event waits", users: []event.User{u("a", 12)}, tick: true},
		{name: "gold at 10: the watermark reaches 10, the event at 12 still waits", orgs: []event.Org{o("gold", 10)}, tick: true},
		{name: "an event at 8, behind the watermark: emitted at once, no version yet",
			users: []event.User{u("b", 8)}, want: []string{"u/0/2=<nil>"}},
		{name: "bronze at 5, late but within 5s of the watermark: corrects the event at 8",
			orgs: []event.Org{o("bronze", 5)}, want: []string{"u/0/2=bronze@5s (correction)"}},
		{name: "silver at 20: the watermark passes 12, the waiting event goes out with gold",
			orgs: []event.Org{o("silver", 20)}, tick: true, want: []string{"u/0/1=gold@10s"}},
		{name: "platinum at 11, beyond the allowed lateness (watermark 20): corrects nothing",
			orgs: []event.Org{o("platinum", 11)}, late: 1},
		{name: "an event at 11.5 arrives after it: platinum is stored, and used",
			users: []event.User{user("c", event.UserCreated, "c", "Acme", at(11).Add(500*time.Millisecond), 1, 1)},
			want:  []string{"u/1/1=platinum@11s"}},
		{name: "a tie at 20, a later record: it wins, and corrects nothing emitted (nothing at or after 20)",
			orgs: []event.Org{o("iron", 20)}},
		{name: "an event at 25: waits; the organization goes idle: it goes out with the tie's winner",
			users: []event.User{u("d", 25)}, tick: true},
	}
	var wantLate int64
	for _, s := range steps {
		f.write(s.users, s.orgs)
		if s.tick {
			f.tick()
		}
		if got := answers(f.emitted()); !slices.Equal(got, s.want) {
			t.Fatalf("%s:\n got %q\nwant %q", s.name, got, s.want)
		}
		wantLate += s.late
		if late, _ := f.st.EnrichedCounts(); late != wantLate {
			t.Fatalf("%s: %d too-late versions counted, want %d", s.name, late, wantLate)
		}
	}
	f.idle()
	f.tick()
	if got, want := answers(f.emitted()), []string{"u/0/3=iron@20s"}; !slices.Equal(got, want) {
		t.Fatalf("idle organization topic:\n got %q\nwant %q", got, want)
	}
	_, corrections := f.st.EnrichedCounts()
	if corrections != 1 {
		t.Fatalf("%d corrections counted, want 1", corrections)
	}
}

// oracleAsOf is the as-of answer of every user event over all versions,
// computed apart from the SQL: the greatest (created_at, partition,
// offset) at or before the event's received_at, by name.
func oracleAsOf(users []event.User, orgs []event.Org) map[string]string {
	out := map[string]string{}
	for _, u := range users {
		var best *event.Org
		for i := range orgs {
			o := &orgs[i]
			if u.OrganizationName == nil || o.Name != *u.OrganizationName || o.CreatedAt.After(u.ReceivedAt) {
				continue
			}
			if best == nil || o.CreatedAt.After(best.CreatedAt) || (o.CreatedAt.Equal(best.CreatedAt) && o.Pos.Compare(best.Pos) > 0) {
				best = o
			}
		}
		a := "<nil>"
		if best != nil {
			a = *best.Tier + "@" + best.CreatedAt.Sub(t0).String()
		}
		out[fmt.Sprintf("%s/%d/%d", usersTopic, u.Pos.Partition, u.Pos.Offset)] = a
	}
	return out
}

// TestAsOfJoinFinalAnswerProperty: for random streams (out-of-order
// versions, ties, unknown organizations, random batches, watermark ticks
// idle periods and restarts), once everything is consumed and released a compacted
// reader holds, for every user event, the as-of answer over all versions;
// and the emissions of each key are one first answer, then corrections
// only, each one changing the answer.
func TestAsOfJoinFinalAnswerProperty(t *testing.T) {
	t.Parallel()
	for _, eager := range []bool{false, true} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("eager=%v/seed=%d", eager, seed), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(seed, 77))
				f := newFeeder(t, store.Config{EnrichedEager: eager, AllowedLateness: 1000 * time.Hour})
				orgNames := []string{"Acme", "Initech", "Umbrella"}
				tiers := []string{"gold", "silver", "bronze"}
				var users []event.User
				var orgs []event.Org
				offs := map[int32]int64{}
				var ooff int64
				var emitted []store.OutboxRow
				for step := range 60 {
					var bu []event.User
					var bo []event.Org
					for range rng.IntN(6) {
						p := int32(rng.IntN(2))
						offs[p]++
						name := orgNames[rng.IntN(len(orgNames))]
						if rng.IntN(10) == 0 {
							name = "Nowhere"
						}
						u := user(fmt.Sprintf("user%d", rng.IntN(20)), event.UserUpdated, "n", name, t0.Add(time.Duration(step*2+rng.IntN(30)-15)*time.Second), p, offs[p])
						bu = append(bu, u)
					}
					if rng.IntN(3) == 0 {
						for range 1 + rng.IntN(2) {
							ooff++
							// Versions up to 40 s out of order, on whole seconds so that ties happen.
							o := org(orgNames[rng.IntN(len(orgNames))], tiers[rng.IntN(len(tiers))], t0.Add(time.Duration(step*2+rng.IntN(40)-30)*time.Second), 0, ooff)
							bo = append(bo, o)
						}
					}
					f.write(bu, bo)
					users, orgs = append(users, bu...), append(orgs, bo...)
					switch rng.IntN(6) {
					case 0, 1, 2:
						f.tick()
					case 3:
						f.idle()
						f.tick()
					case 4:
						f.restart()
					}
					if rng.IntN(4) == 0 {
						emitted = append(emitted, f.emitted()...)
					}
				}
				f.idle()
				f.tick()
				emitted = append(emitted, f.emitted()...)
				checkEmissions(t, emitted, oracleAsOf(users, orgs))
			})
		}
	}
}

// checkEmissions checks emitted against want (key → final answer): every
// key's last answer is want's, its first emission is not a correction and
// every later one is, and no emission repeats the one before it.
func checkEmissions(t *testing.T, emitted []store.OutboxRow, want map[string]string) {
	t.Helper()
	last := map[string]store.OutboxRow{}
	for _, r := range emitted {
		e := r.Event
		key := fmt.Sprintf("%s/%d/%d", e.Topic, e.Partition, e.Offset)
		prev, seen := last[key]
		switch {
		case !seen && e.Correction:
			t.Errorf("%s: first emitted as a correction", key)
		case seen && !e.Correction:
			t.Errorf("%s: emitted twice as a first answer", key)
		case seen && sameAnswer(prev.Event, e):
			t.Errorf("%s: a correction that changes nothing: %s", key, answer(r))
		}
		last[key] = r
	}
	got := map[string]string{}
	for k, r := range last {
		a := "<nil>"
		if r.Event.OrgValidFrom != nil {
			a = deref(r.Event.OrganizationTier) + "@" + r.Event.OrgValidFrom.Sub(t0).String()
		}
		got[k] = a
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: never emitted (want %s)", k, w)
		} else if g != w {
			t.Errorf("%s: final answer %s, want %s", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: emitted, but no such event", k)
		}
	}
}

func sameAnswer(a, b *store.EnrichedEvent) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestAsOfJoinEmissionAndCorrectionSeeEachOther races a user event's
// emission against an organization version that changes its answer, in
// both orders: whichever transaction commits second must see the other,
// so that the event ends with the version (emitted with it, or corrected
// to it). The enriched lock is what makes the second wait.
func TestAsOfJoinEmissionAndCorrectionSeeEachOther(t *testing.T) {
	t.Parallel()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	userBatch := &store.Batch{UserTopic: usersTopic, OrgTopic: orgsTopic,
		Users: []event.User{user("a", event.UserCreated, "a", "Acme", at(15), 0, 1)}}
	orgBatch := &store.Batch{UserTopic: usersTopic, OrgTopic: orgsTopic,
		Orgs: []event.Org{org("Acme", "gold", at(10), 0, 1)}}
	for _, tc := range []struct {
		name          string
		first, second *store.Batch
		want          []string
	}{
		{"the emission first: the version corrects it", userBatch, orgBatch,
			[]string{"u/0/1=<nil>", "u/0/1=gold@10s (correction)"}},
		{"the version first: the emission sees it", orgBatch, userBatch,
			[]string{"u/0/1=gold@10s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFeeder(t, store.Config{})
			opts := store.EnrichOptions{Eager: true, AllowedLateness: time.Hour}
			ctx := context.Background()
			begin := func() (pgx.Tx, uint32) {
				conn := testenv.Conn(t)
				if _, err := conn.Exec(ctx, "SET search_path = "+f.st.Schema()); err != nil {
					t.Fatal(err)
				}
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = tx.Rollback(ctx) }) // after Commit: a no-op
				return tx, conn.PgConn().PID()
			}
			write := func(tx pgx.Tx, b *store.Batch) error {
				if err := store.AppendRawTx(ctx, tx, b); err != nil {
					return err
				}
				if _, err := store.EnrichTx(ctx, tx, b, opts); err != nil {
					return err
				}
				if err := store.NumberCommitTx(ctx, tx); err != nil {
					return err
				}
				return tx.Commit(ctx)
			}
			tx1, pid1 := begin()
			if err := store.AppendRawTx(ctx, tx1, tc.first); err != nil {
				t.Fatal(err)
			}
			if _, err := store.EnrichTx(ctx, tx1, tc.first, opts); err != nil {
				t.Fatal(err)
			}
			tx2, _ := begin()
			done := make(chan error, 1)
			go func() { done <- write(tx2, tc.second) }()
			err, finished := testenv.WaitBlockedOrDone(t, pid1, done)
			if finished {
				t.Errorf("the second transaction did not wait for the first (err %v)", err)
				done <- err
			}
			if err := store.NumberCommitTx(ctx, tx1); err != nil {
				t.Fatal(err)
			}
			if err := tx1.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the second transaction never finished")
			}
			if got := answers(f.emitted()); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAsOfJoinWorkedExample is docs/event-time.md's worked example: the
// seed's "God of War" users, out of order, against two versions of their
// organization, the second arriving after the organization topic went
// idle.
func TestAsOfJoinWorkedExample(t *testing.T) {
	t.Parallel()
	f := newFeeder(t, store.Config{AllowedLateness: time.Hour})
	at := func(day, h, m int) time.Time { return time.Date(2020, 12, day, h, m, 16, 759617000, time.UTC) }
	var off int64
	u := func(name string, typ event.UserEventType, tm time.Time) event.User {
		off++
		return user(name, typ, name, "God of War", tm, 0, off)
	}
	o := func(tier string, day int, ooff int64) event.Org {
		return org("God of War", tier, time.Date(2020, 12, day, 0, 0, 0, 0, time.UTC), 0, ooff)
	}
	// 1. free arrives; every user event is after the watermark: all wait.
	f.write([]event.User{
		u("Zeus", event.UserCreated, at(6, 22, 3)), u("Apollo", event.UserCreated, at(6, 15, 23)),
		u("Zeus", event.UserUpdated, at(8, 4, 3)), u("Cratos", event.UserCreated, at(8, 20, 3)),
		u("Athena", event.UserCreated, at(8, 19, 14)),
	}, []event.Org{o("free", 6, 1)})
	if _, err := f.st.AdvanceWatermarks(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := f.st.ReleaseEnriched(context.Background(), orgsTopic, 100); err != nil || n != 0 {
		t.Fatalf("released %d (%v) before the organization topic went idle, want 0", n, err)
	}
	// 2. The organization topic goes idle: all go out with free.
	f.idle()
	f.tick()
	want := []string{"u/0/2=free@" + time.Date(2020, 12, 6, 0, 0, 0, 0, time.UTC).Sub(t0).String()}
	got := answers(f.emitted())
	if len(got) != 5 {
		t.Fatalf("after the idle release: %q, want the five events with free", got)
	}
	for _, g := range got {
		if !strings.HasSuffix(g, strings.TrimPrefix(want[0], "u/0/2")) {
			t.Fatalf("after the idle release: %q, want each with free", got)
		}
	}
	// 3. pro from 12-08 arrives: it corrects the three events of 12-08.
	f.write(nil, []event.Org{o("pro", 8, 2)})
	pro := "=pro@" + time.Date(2020, 12, 8, 0, 0, 0, 0, time.UTC).Sub(t0).String() + " (correction)"
	if got, want := answers(f.emitted()), []string{"u/0/3" + pro, "u/0/5" + pro, "u/0/4" + pro}; !slices.Equal(got, want) {
		t.Fatalf("after pro:\n got %q\nwant %q (Zeus's update, Athena, Cratos, by time)", got, want)
	}
}

// TestEnrichedIndexOnlyWithTheJoin: the raw user log's index by
// organization and event time, which every raw event pays an entry in, is
// created by Migrate for a store with the as-of join on, and not for one
// without it.
func TestEnrichedIndexOnlyWithTheJoin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := testenv.Conn(t)
	for _, on := range []bool{false, true} {
		st, err := store.Open(ctx, store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t), Enriched: on}, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		if _, err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'user_events_org_received_idx'", st.Schema()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if (n == 1) != on {
			t.Errorf("Enriched %v: %d indexes user_events_org_received_idx, want %v", on, n, on)
		}
		// A second Migrate of the same schema is a no-op.
		if _, err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
