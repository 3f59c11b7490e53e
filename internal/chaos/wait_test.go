package chaos_test

import (
	"context"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// committed returns the sum of stored next offsets per topic.
func (h *harness) committed() map[string]int64 {
	got := map[string]int64{}
	rows, err := h.conn.Query(context.Background(), "SELECT topic, coalesce(sum(next_offset), 0)::bigint FROM "+h.schema+".kafka_offsets GROUP BY topic")
	if err != nil {
		return got // the schema may not exist yet
	}
	var topic string
	var sum int64
	_, _ = pgx.ForEachRow(rows, []any{&topic, &sum}, func() error { got[topic] = sum; return nil })
	return got
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// waitProgress waits until more is committed than before, or limit passes.
func (h *harness) waitProgress(before int64, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if total(h.committed()) > before {
			return true
		}
	}
	return false
}

// waitInTransaction waits until a streamjoin connection is inside a
// transaction that has written something: a batch commit in progress.
func (h *harness) waitInTransaction(limit time.Duration) bool {
	return h.waitWriting(h.appName()+"-%", true, limit)
}

// writingProc waits until one of procs is inside a writing transaction and
// returns it, or nil after limit.
func (h *harness) writingProc(procs []*proc, limit time.Duration) *proc {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		var name string
		err := h.conn.QueryRow(context.Background(), `SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1 AND backend_xid IS NOT NULL LIMIT 1`, h.appName()+"-%").Scan(&name)
		if err != nil {
			continue
		}
		for _, p := range procs {
			if name == h.appName()+"-"+p.name {
				return p
			}
		}
	}
	return nil
}

// waitWriting waits until whether a connection whose application_name is
// LIKE pattern is inside a writing transaction equals want. It looks at
// least once, so a limit of 0 is a plain check.
func (h *harness) waitWriting(pattern string, want bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := h.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 AND backend_xid IS NOT NULL`, pattern).Scan(&n)
		if err == nil && (n > 0) == want {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// pause SIGSTOPs p at a moment when one of its sessions is inside a
// writing transaction (inTx) or none is. Its pipelined commit opens and ends
// transactions on its own, so pause looks again once p is stopped, and
// resumes it and retries if the moment was the wrong one.
func (h *harness) pause(p *proc, inTx bool) {
	h.t.Helper()
	pattern := h.appName() + "-" + p.name
	for range 50 {
		h.waitWriting(pattern, inTx, 5*time.Second)
		p.signal(h.t, syscall.SIGSTOP)
		time.Sleep(50 * time.Millisecond) // a statement already sent finishes
		if h.waitWriting(pattern, inTx, 0) {
			return
		}
		p.signal(h.t, syscall.SIGCONT)
		time.Sleep(time.Duration(10+rand.IntN(100)) * time.Millisecond)
	}
	h.t.Fatalf("could not pause %s (inside a transaction: %v) in 50 tries", p.name, inTx)
}

// waitCaughtUp waits for the producer to finish and the stored offsets to
// reach the end of every partition.
func (h *harness) waitCaughtUp(s *stream, limit time.Duration) {
	h.t.Helper()
	<-s.done
	if s.err != nil {
		h.t.Fatalf("producing: %v", s.err)
	}
	want := map[string]int64{}
	for topic, ends := range s.ends {
		for _, end := range ends {
			want[topic] += end
		}
	}
	deadline := time.Now().Add(limit)
	for {
		got := h.committed()
		if got["user_events"] == want["user_events"] && got["org_events"] == want["org_events"] {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("stored offsets did not reach the end within %s: got %v, want %v", limit, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
