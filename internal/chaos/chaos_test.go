package chaos_test

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

// TestCrashes kills the process with SIGKILL again and again while the stream
// flows, half of the time while a batch transaction is open, and restarts
// it. The end state is that of one clean run: nothing lost, nothing
// duplicated, every invalid record dead-lettered once.
func TestCrashes(t *testing.T) {
	t.Parallel()
	h := setup(t, "", "")
	// Enriched events go out at once, so that late organization versions
	// correct them while processes are killed.
	h.extra = []string{"--enriched-emit", "eager"}
	started := time.Now()
	n, kills := *flagEvents, *flagKills
	// Spread the stream over the kill phase (about 3s a kill), so every kill
	// lands mid-stream; that is checked at each kill.
	s := h.produce(streamConfig(n, 42), max(2000, n/kills/3), nil)
	r := newRand(t)
	f := figures{Test: "crashes"}
	for k := 0; k < kills; k++ {
		before := h.committedTotal()
		p := h.start()
		if !h.waitProgress(before, 60*time.Second) {
			t.Fatalf("kill %d: the restarted process made no progress in 60s", k)
		}
		if k%2 == 0 {
			// Frozen inside a batch transaction, confirmed, or the test
			// stops here.
			h.pause(p, true)
			f.KillsInCommit++
		} else {
			time.Sleep(time.Duration(r.IntN(500)) * time.Millisecond)
		}
		if s.ended() {
			t.Fatalf("kill %d: the stream ended before it; make the stream slower so that every kill lands mid-stream", k)
		}
		p.kill(t)
		f.Kills++
	}
	p := h.start()
	f.Restarts = kills + 1
	h.waitCaughtUp(s, 10*time.Minute)
	h.finish(s, &f, started, p)
}

// TestRebalances runs three members of one group while the stream flows,
// and every second or two kills one (SIGKILL) or stops it (SIGTERM) and
// starts a new one. Partitions move at every change; the end checks hold.
func TestRebalances(t *testing.T) {
	t.Parallel()
	h := setup(t, "", "")
	started := time.Now()
	n := *flagEvents
	s := h.produce(streamConfig(n, 7), max(2000, n/20), nil)
	r := newRand(t)
	f := figures{Test: "rebalances"}
	procs := []*proc{h.start(), h.start(), h.start()}
	if !h.waitProgress(0, 60*time.Second) {
		t.Fatal("no progress in 60s")
	}
	for i := 0; i < 8; i++ {
		time.Sleep(time.Duration(500+r.IntN(1500)) * time.Millisecond)
		j := r.IntN(len(procs))
		if r.IntN(2) == 0 {
			procs[j].kill(t)
			f.Kills++
		} else {
			procs[j].stop(t, 20*time.Second)
		}
		procs[j] = h.start()
		f.Restarts++
	}
	h.waitCaughtUp(s, 10*time.Minute)
	h.finish(s, &f, started, procs...)
}

// TestZombies pauses a member (SIGSTOP) past its session timeout while the
// others take over its partitions; then it resumes (SIGCONT). The others must
// make progress meanwhile, and its late batch must be refused: the tables
// and raw logs end exactly right. The first pause lands just after a commit,
// outside a transaction, so that it most likely holds the next batch; the
// others land inside a batch transaction (streaming a COPY, most often),
// where a paused member must not hold what its successor needs. No dead
// letter may appear twice either: a zombie's dead-letter produce is fenced
// by the broker (see docs/delivery-semantics.md).
func TestZombies(t *testing.T) {
	t.Parallel()
	h := setup(t, "", "")
	h.extra = []string{"--enriched-emit", "eager"} // corrections from zombies too
	started := time.Now()
	n := *flagEvents
	const zombies = 3
	s := h.produce(streamConfig(n, 8), max(2000, n/40), nil)
	f := figures{Test: "zombies"}
	procs := []*proc{h.start(), h.start(), h.start()}
	if !h.waitProgress(0, 60*time.Second) {
		t.Fatal("no progress in 60s")
	}
	for z := 0; z < zombies; z++ {
		zombie := h.writingProc(procs, 10*time.Second)
		if zombie == nil {
			t.Fatal("no member committed a batch in 10s")
		}
		h.pause(zombie, z > 0)
		// The others have work to take over: records still to come, or
		// (z > 0) the zombie's uncommitted batch.
		if s.ended() {
			t.Fatalf("zombie %d: the stream ended before it was paused; make the stream slower", z)
		}
		before := h.committedTotal()
		// Let the zombie's session expire: only then may the others take
		// its partitions. Progress is awaited below, with a deadline.
		time.Sleep(h.session + 3*time.Second)
		if !h.waitProgress(before, 30*time.Second) {
			t.Fatalf("zombie %d: the other members made no progress while it was paused", z)
		}
		zombie.signal(t, syscall.SIGCONT)
		time.Sleep(time.Second)
	}
	h.waitCaughtUp(s, 10*time.Minute)
	// A zombie resumed inside its batch transaction retries the write and is
	// fenced: at least one must have been, or fencing was not exercised. A
	// member with no write error at all has no series, hence the ErrNoSeries
	// allowance; a renamed metric still fails, as the sum stays 0.
	var fenced, dlqFenced float64
	for _, p := range procs {
		m := p.metrics(t)
		v, err := m.Sum("streamjoin_ingest_write_errors_total", map[string]string{"class": "fenced"})
		if err != nil && !errors.Is(err, testenv.ErrNoSeries) {
			t.Fatal(err)
		}
		fenced += v
		v, err = m.Sum("streamjoin_ingest_write_errors_total", map[string]string{"class": "dead_letter_fenced"})
		if err != nil && !errors.Is(err, testenv.ErrNoSeries) {
			t.Fatal(err)
		}
		dlqFenced += v
		// Dead letters refused by the ownership check have no metric yet.
		f.ZombieFenced += p.logCount("partitions claimed by another member")
	}
	f.ZombieFenced += int(fenced)
	t.Logf("%v batch writes fenced, %v dead-letter transactions fenced by the broker", fenced, dlqFenced)
	if fenced == 0 {
		t.Errorf("no zombie batch write was fenced (write_errors_total{class=\"fenced\"} is 0 on every member): the test did not exercise fencing")
	}
	h.finish(s, &f, started, procs...)
}

// TestGracefulShutdown sends SIGTERM mid-batch: the process commits the
// batch in flight, leaves the group and exits 0 well within its shutdown
// timeout, and the next process re-reads nothing that was committed.
//
// Mid-batch is confirmed: the process is frozen (SIGSTOP) while PostgreSQL
// shows one of its sessions inside a writing transaction, SIGTERM is queued,
// and SIGCONT resumes it into that transaction with the signal pending.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	h := setup(t, "", "")
	started := time.Now()
	n := min(*flagEvents, 50_000)
	s := h.produce(streamConfig(n, 9), n/15, nil)
	f := figures{Test: "graceful-shutdown"}
	for round := 0; round < 3; round++ {
		before := h.committedTotal()
		p := h.start()
		if !h.waitProgress(before, 60*time.Second) {
			t.Fatal("no progress in 60s")
		}
		h.pause(p, true) // confirmed inside a batch transaction, or the test stops
		frozen := h.committedTotal()
		if s.ended() {
			t.Fatalf("round %d: the stream ended before SIGTERM; make the stream slower", round)
		}
		start := time.Now()
		p.signal(t, syscall.SIGTERM) // pending while p is stopped
		p.signal(t, syscall.SIGCONT)
		took := p.waitExit(t, start, 12*time.Second) // --shutdown-timeout is 10s
		t.Logf("%s exited %s after SIGTERM", p.name, took)
		if after := h.committedTotal(); after <= frozen {
			t.Errorf("%s did not commit the batch in flight at SIGTERM: stored offsets sum to %d, as when it was frozen", p.name, after)
		}
		// A member that left is gone at once; one that did not would stay
		// until its 2s session timeout.
		if members, err := h.groupMembers(); err != nil || members != 0 {
			t.Errorf("%s did not leave the group on SIGTERM: %d members after its exit (%v)", p.name, members, err)
		}
		f.Restarts++
	}
	p := h.start()
	h.waitCaughtUp(s, 5*time.Minute)
	m := p.metrics(t)
	for _, topic := range h.topics {
		v, err := m.CounterOrZero("streamjoin_ingest_records_total", map[string]string{"outcome": "skipped", "topic": topic})
		if err != nil {
			t.Fatal(err)
		}
		if v != 0 {
			t.Errorf("the process after a graceful stop re-read %v committed records of %s", v, topic)
		}
	}
	h.finish(s, &f, started, p)
}
