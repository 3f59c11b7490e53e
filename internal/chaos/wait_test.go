package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// committed returns the sum of stored next offsets per topic: empty before
// the process has created its schema, and an error on any other failure.
func (h *harness) committed() (map[string]int64, error) {
	got := map[string]int64{}
	rows, _ := h.conn.Query(context.Background(), "SELECT topic, coalesce(sum(next_offset), 0)::bigint FROM "+h.schema+".kafka_offsets GROUP BY topic")
	var topic string
	var sum int64
	_, err := pgx.ForEachRow(rows, []any{&topic, &sum}, func() error { got[topic] = sum; return nil })
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && (pgErr.Code == pgerrcode.UndefinedTable || pgErr.Code == pgerrcode.InvalidSchemaName) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading stored offsets: %w", err)
	}
	return got, nil
}

// committedTotal is the sum of every stored next offset; a failed read
// fails the test.
func (h *harness) committedTotal() int64 {
	h.t.Helper()
	got, err := h.committed()
	if err != nil {
		h.t.Fatal(err)
	}
	return total(got)
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// waitProgress waits until more is committed than before, or limit passes.
// A read that fails all along fails the test rather than read as no
// progress.
func (h *harness) waitProgress(before int64, limit time.Duration) bool {
	h.t.Helper()
	var last error
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got, err := h.committed()
		if err != nil {
			last = err
			continue
		}
		last = nil
		if total(got) > before {
			return true
		}
	}
	if last != nil {
		h.t.Fatalf("waiting for progress: %v", last)
	}
	return false
}

// writingProc waits until one of procs is inside a writing transaction and
// returns it, or nil after limit.
func (h *harness) writingProc(procs []*proc, limit time.Duration) *proc {
	h.t.Helper()
	var last error
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		var name string
		err := h.conn.QueryRow(context.Background(), `SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1 AND backend_xid IS NOT NULL LIMIT 1`, h.appName()+"-%").Scan(&name)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if last = err; err != nil {
			continue
		}
		for _, p := range procs {
			if name == h.appName()+"-"+p.name {
				return p
			}
		}
	}
	if last != nil {
		h.t.Fatalf("looking for a member inside a transaction: %v", last)
	}
	return nil
}

// waitWriting waits until whether a connection whose application_name is
// LIKE pattern is inside a writing transaction equals want. It looks at
// least once, so a limit of 0 is a plain check. A query that fails is not
// an answer: if the last look failed, so does waitWriting, with its error.
func (h *harness) waitWriting(pattern string, want bool, limit time.Duration) (bool, error) {
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := h.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 AND backend_xid IS NOT NULL`, pattern).Scan(&n)
		if err == nil && (n > 0) == want {
			return true, nil
		}
		if !time.Now().Before(deadline) {
			if err != nil {
				return false, fmt.Errorf("reading pg_stat_activity: %w", err)
			}
			return false, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// pause SIGSTOPs p at a moment when one of its sessions is inside a
// writing transaction (inTx) or none is, and returns only once that is
// confirmed with p stopped; otherwise it fails the test. Its pipelined
// commit opens and ends transactions on its own, so pause looks again once
// p is stopped, and resumes it and retries if the moment was the wrong one.
// A process stopped inside a transaction must be resumed or killed within
// --pg-idle-in-transaction-timeout (2s), or PostgreSQL ends its session.
func (h *harness) pause(p *proc, inTx bool) {
	h.t.Helper()
	pattern := h.appName() + "-" + p.name
	var last error
	deadline := time.Now().Add(90 * time.Second)
	for try := 0; try < 50 && time.Now().Before(deadline); try++ {
		// A hint only: the moment is confirmed below, with p stopped.
		if _, err := h.waitWriting(pattern, inTx, 5*time.Second); err != nil {
			last = err
		}
		if !p.alive() {
			h.t.Fatalf("%s exited while waiting to pause it: %v", p.name, p.err)
		}
		p.signal(h.t, syscall.SIGSTOP)
		time.Sleep(50 * time.Millisecond) // a statement already sent finishes
		ok, err := h.waitWriting(pattern, inTx, 0)
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		p.signal(h.t, syscall.SIGCONT)
		time.Sleep(time.Duration(10+rand.IntN(100)) * time.Millisecond)
	}
	h.t.Fatalf("could not pause %s (inside a transaction: %v) in 50 tries or 90s (last query error: %v)", p.name, inTx, last)
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
	if want["user_events"] == 0 || want["org_events"] == 0 {
		h.t.Fatalf("the stream put nothing in a topic: end offsets %v", want)
	}
	deadline := time.Now().Add(limit)
	for {
		got, err := h.committed()
		if err == nil && got["user_events"] == want["user_events"] && got["org_events"] == want["org_events"] {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("stored offsets did not reach the end within %s: got %v (%v), want %v", limit, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
