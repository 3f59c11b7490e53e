package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/store"
)

// brokenWriter fails every batch with err.
type brokenWriter struct {
	ingest.Writer
	err   error
	calls atomic.Int64
}

func (w *brokenWriter) WriteLog(context.Context, *store.Batch) error {
	w.calls.Add(1)
	return w.err
}

// TestWriteErrorClasses: an error that retrying cannot fix (a bug, data
// PostgreSQL refuses) ends Run with that error after one attempt, instead of
// being retried forever while the partition stalls; a transport failure is
// retried until it goes away.
func TestWriteErrorClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"bug", errors.New("encoding bug"), true},
		{"connection lost", fmt.Errorf("reading from postgres: %w", io.ErrUnexpectedEOF), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, kfake.SeedTopics(1, "user_events", "org_events"))
			users, _ := workload(5, 10, 50, 2, 0)
			produce(t, e.broker, "user_events", users)
			cfg := e.config(100)
			cfg.Writers = 1
			cfg.RetryBackoffMax = 20 * time.Millisecond
			// After cancel, the lane retrying an outage gets this long
			// before its batch is abandoned.
			cfg.ShutdownTimeout = time.Second
			w := &brokenWriter{Writer: e.st, err: tc.err}
			ctx, cancel, done := e.runUntil(t, cfg, w, 30*time.Second)
			defer cancel()
			if !tc.permanent {
				for w.calls.Load() < 3 {
					select {
					case err := <-done:
						t.Fatalf("Run ended with %v after %d attempts; a transport failure must be retried", err, w.calls.Load())
					case <-time.After(10 * time.Millisecond):
					}
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Run after cancel = %v, want nil", err)
				}
				return
			}
			err := <-done
			if ctx.Err() != nil {
				t.Fatalf("Run kept retrying a permanent error for 30s (%d attempts)", w.calls.Load())
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), "permanent") {
				t.Fatalf("Run = %v, want the write error, marked permanent", err)
			}
			if n := w.calls.Load(); n != 1 {
				t.Errorf("WriteLog called %d times, want 1: a permanent error is not retried", n)
			}
		})
	}
}

// stateFailingWriter fails every state write with err; the log goes
// through to the store.
type stateFailingWriter struct {
	ingest.Writer
	err    error
	states atomic.Int64
	logs   atomic.Int64
}

func (w *stateFailingWriter) WriteState(context.Context, *store.Batch) error {
	w.states.Add(1)
	return w.err
}

func (w *stateFailingWriter) WriteLog(ctx context.Context, b *store.Batch) error {
	w.logs.Add(1)
	return w.Writer.WriteLog(ctx, b)
}

// TestFailedStateHoldsTheLog: a batch's raw logs and offsets commit only
// after its state did. When the state fails, Run ends with that error and
// no offset moves, so no event is skipped whose state was never stored.
func TestFailedStateHoldsTheLog(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(2, "user_events", "org_events"))
	users, _ := workload(6, 20, 200, 2, 0)
	produce(t, e.broker, "user_events", users)
	cfg := e.config(50)
	w := &stateFailingWriter{Writer: e.st, err: errors.New("state bug")}
	_, cancel, done := e.runUntil(t, cfg, w, 30*time.Second)
	defer cancel()
	if err := <-done; !errors.Is(err, w.err) {
		t.Fatalf("Run = %v, want the state error", err)
	}
	if w.states.Load() == 0 {
		t.Fatal("no state write was attempted: the test proves nothing")
	}
	if n := w.logs.Load(); n != 0 {
		t.Errorf("%d log writes after the state failed, want 0", n)
	}
	var n int
	if err := e.conn(t).QueryRow(context.Background(), "SELECT (SELECT count(*) FROM "+e.schema+".user_events) + (SELECT count(*) FROM "+e.schema+".kafka_offsets WHERE next_offset IS NOT NULL)").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d raw rows and moved offsets after the state failed, want 0", n)
	}
}

// splitFailingWriter fails the log of partition 1 for good and that of
// partition 0 with a transport error, forever.
type splitFailingWriter struct {
	ingest.Writer
	bug error
}

func (w *splitFailingWriter) WriteLog(_ context.Context, b *store.Batch) error {
	for _, a := range b.Offsets {
		if a.Partition == 1 {
			return w.bug
		}
	}
	return fmt.Errorf("simulated outage: %w", io.ErrUnexpectedEOF)
}

// TestPermanentErrorEndsRunWhileAnotherLaneRetries: a failure for good in
// one lane ends Run with it at once, even while another lane is retrying an
// outage that never ends; the process must not hang on it.
func TestPermanentErrorEndsRunWhileAnotherLaneRetries(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(2, "user_events", "org_events"))
	users, _ := workload(8, 20, 200, 2, 0)
	produce(t, e.broker, "user_events", users)
	cfg := e.config(500)
	cfg.Writers = 2
	cfg.RetryBackoffMax = 50 * time.Millisecond
	cfg.ShutdownTimeout = time.Minute // a stop would let the retrying lane go on
	w := &splitFailingWriter{Writer: e.st, bug: errors.New("log bug")}
	_, cancel, done := e.runUntil(t, cfg, w, 30*time.Second)
	defer cancel()
	select {
	case err := <-done:
		if !errors.Is(err, w.bug) {
			t.Fatalf("Run = %v, want the permanent error", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run still running 15s after a permanent error, behind a lane that retries an outage")
	}
}
