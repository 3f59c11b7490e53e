package store_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

const ooo = 5 * time.Second

// wmEnv is a schema with partitions 0..n-1 of topic "u" claimed, and the
// stored offset of each as the writer left it.
type wmEnv struct {
	t    *testing.T
	st   *store.Store
	gen  map[int32]int64
	next map[int32]*int64
}

func newWMEnv(t *testing.T, st *store.Store, n int32) *wmEnv {
	e := &wmEnv{t: t, st: st, gen: map[int32]int64{}, next: map[int32]*int64{}}
	var tps []store.TopicPartition
	for p := range n {
		tps = append(tps, store.TopicPartition{Topic: "u", Partition: p})
	}
	for tp, c := range claim(t, st, tps...) {
		e.gen[tp.Partition] = c.Generation
	}
	return e
}

// advance commits one record of partition p whose event time is at.
func (e *wmEnv) advance(p int32, at time.Time) {
	e.t.Helper()
	from := e.next[p]
	to := int64(1)
	if from != nil {
		to = *from + 1
	}
	b := &store.Batch{UserTopic: "u", OrgTopic: "o", Offsets: []store.OffsetAdvance{{Topic: "u", Partition: p, Generation: e.gen[p], From: from, To: to, MaxEventTime: at}}}
	if err := e.st.WriteBatch(context.Background(), b); err != nil {
		e.t.Fatal(err)
	}
	e.next[p] = &to
}

func (e *wmEnv) idle(p int32) {
	e.t.Helper()
	marked, err := e.st.MarkIdle(context.Background(), []store.IdleMark{{Topic: "u", Partition: p, Generation: e.gen[p], Next: e.next[p], Since: time.Now()}})
	if err != nil || len(marked) != 1 {
		e.t.Fatalf("marking %d idle: %v marked, %v", p, marked, err)
	}
}

func (e *wmEnv) watermark() store.Watermark {
	e.t.Helper()
	ws, err := e.st.AdvanceWatermarks(context.Background(), ooo)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, w := range ws {
		if w.Topic == "u" {
			return w
		}
	}
	e.t.Fatal("no watermark row for topic u")
	return store.Watermark{}
}

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// TestWatermarkRules walks the rules one step at a time: a partition with
// no event holds the topic back; the watermark is the least partition's
// event time minus the out-of-orderness; an older event does not move a
// partition back; an idle partition stops holding the topic back, and when
// it wakes with older events the watermark stays where it was; all idle is
// the greatest event time; a restart finds it where it was; a stale mark
// changes nothing.
func TestWatermarkRules(t *testing.T) {
	t.Parallel()
	st := setup(t)
	e := newWMEnv(t, st, 2)
	check := func(step string, want time.Time, idle bool) {
		t.Helper()
		w := e.watermark()
		if !w.Watermark.Equal(want) || w.Idle != idle {
			t.Errorf("%s: watermark %v idle %v, want %v idle %v", step, w.Watermark, w.Idle, want, idle)
		}
	}
	check("no events", time.Time{}, false)
	e.advance(0, at(100))
	check("partition 1 has no event yet", time.Time{}, false)
	e.advance(1, at(40))
	check("the least partition", at(40).Add(-ooo), false)
	e.advance(1, at(30))
	check("an older event", at(40).Add(-ooo), false)
	e.idle(1)
	check("partition 1 idle", at(100).Add(-ooo), false)
	e.advance(1, at(50))
	check("partition 1 wakes with older events", at(100).Add(-ooo), false)
	e.advance(0, at(120))
	check("partition 1 holds it again", at(100).Add(-ooo), false)
	e.advance(1, at(200))
	check("both move on", at(120).Add(-ooo), false)
	e.idle(0)
	e.idle(1)
	check("all idle: the greatest event time", at(200).Add(-ooo), true)

	// A restart: a new store on the same schema, a successor's claim.
	again, err := store.Open(context.Background(), store.Config{DSN: testenv.PostgresDSN(t), Schema: st.Schema()}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	e2 := newWMEnv(t, again, 2)
	if w := e2.watermark(); !w.Watermark.Equal(at(200).Add(-ooo)) {
		t.Errorf("after a restart: watermark %v, want %v", w.Watermark, at(200).Add(-ooo))
	}
	// The first owner's generation is stale now: its mark changes nothing.
	if marked, err := again.MarkIdle(context.Background(), []store.IdleMark{{Topic: "u", Partition: 0, Generation: e.gen[0], Next: e.next[0], Since: time.Now()}}); err != nil || len(marked) != 0 {
		t.Errorf("a stale mark marked %v (%v)", marked, err)
	}
}

// TestWatermarkNeverGoesBackwards drives random advances (older and newer
// events), idle marks and wake-ups over three partitions, and after each
// compares the stored watermark with a model of the rules kept here: the
// greatest candidate so far.
func TestWatermarkNeverGoesBackwards(t *testing.T) {
	t.Parallel()
	st := setup(t)
	const n = 3
	e := newWMEnv(t, st, n)
	r := rand.New(rand.NewPCG(7, 8))
	maxAt := map[int32]time.Time{}
	idle := map[int32]bool{}
	var model time.Time
	moves := 0
	for step := range 300 {
		p := int32(r.IntN(n))
		if r.IntN(4) == 0 && !idle[p] {
			e.idle(p)
			idle[p] = true
		} else {
			ev := at(step/2 + r.IntN(40) - 20)
			e.advance(p, ev)
			if ev.After(maxAt[p]) {
				maxAt[p] = ev
			}
			idle[p] = false
		}
		// The candidate, as the rules say.
		var cand, latest time.Time
		allIdle, held := true, false
		for q := range int32(n) {
			if maxAt[q].After(latest) {
				latest = maxAt[q]
			}
			if idle[q] {
				continue
			}
			allIdle = false
			switch {
			case maxAt[q].IsZero():
				held = true
			case cand.IsZero() || maxAt[q].Before(cand):
				cand = maxAt[q]
			}
		}
		switch {
		case allIdle && !latest.IsZero():
			cand = latest
		case held:
			cand = time.Time{}
		}
		if !cand.IsZero() && (model.IsZero() || cand.Add(-ooo).After(model)) {
			model = cand.Add(-ooo)
			moves++
		}
		w := e.watermark()
		if !w.Watermark.Equal(model) {
			t.Fatalf("step %d: watermark %v, want %v", step, w.Watermark, model)
		}
	}
	if moves < 20 {
		t.Errorf("the watermark moved %d times: the test proves little", moves)
	}
}

// TestUnclaimedPartitionHoldsTheWatermark: a partition recorded at start
// but not claimed by anyone yet holds its topic back, as one with no event
// does; without the record it would be left out of the least, and its
// older events would arrive behind a watermark that never goes back.
func TestUnclaimedPartitionHoldsTheWatermark(t *testing.T) {
	t.Parallel()
	st := setup(t)
	ctx := context.Background()
	if err := st.EnsurePartitions(ctx, []store.TopicPartition{{Topic: "u", Partition: 0}, {Topic: "u", Partition: 1}}); err != nil {
		t.Fatal(err)
	}
	e := newWMEnv(t, st, 1) // claims partition 0 only
	e.advance(0, at(100))
	if w := e.watermark(); !w.Watermark.IsZero() {
		t.Errorf("watermark %v while partition 1 is unclaimed, want none", w.Watermark)
	}
}
