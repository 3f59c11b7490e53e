package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/produce"
)

// session is one claim of the transactional id: a producer that fenced
// every earlier one, and the manifest as committed when it started, kept
// up to date by its own commits. Any error ends the session; the next one
// starts again from what is committed. It is used by one goroutine.
type session struct {
	w        *Watcher
	cl       *kgo.Client
	manifest map[string]entry
}

// startSession claims the transactional id and reads the manifest. Claiming
// (InitProducerID) bumps the id's epoch, which fences a predecessor still
// running and aborts its open transaction, so the read that follows sees
// every committed entry and nothing else.
func (w *Watcher) startSession(ctx context.Context) (*session, error) {
	txnTimeout := max(40*time.Second, w.cfg.CommitTimeout+10*time.Second)
	cl, err := w.conn.NewClient("watch",
		kgo.TransactionalID(w.cfg.transactionalID()),
		kgo.TransactionTimeout(txnTimeout),
		kgo.RecordDeliveryTimeout(w.cfg.CommitTimeout),
		kgo.ProducerBatchMaxBytes(int32(max(1_000_000, w.cfg.MaxRecordBytes+4096))),
	)
	if err != nil {
		return nil, err
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("claiming transactional id %q: %w", w.cfg.transactionalID(), err)
	}
	m, err := readManifest(ctx, w.conn, w.cfg.ManifestTopic, w.cfg.source())
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &session{w: w, cl: cl, manifest: m}, nil
}

func (s *session) close() { s.cl.Close() }

// errStopping ends a file between transactions when the context ends.
var errStopping = errors.New("stopping")

// file takes f: skips it if the manifest says it is finished (putting it
// away again, in case a crash came between the commit and the move), fails
// it if it is not JSON or changed after part of it was produced, and
// otherwise produces its records from the first one not committed. It
// returns whether it produced or finished anything.
func (s *session) file(ctx context.Context, f file) (bool, error) {
	cfg := &s.w.cfg
	e, known := s.manifest[f.Name]
	switch {
	case known && e.same(f) && (e.State == stateDone || e.State == stateFailed):
		return false, s.w.src.finish(ctx, f, e.State, e.Reason)
	case known && !e.same(f) && e.State == stateProducing:
		return true, s.fail(ctx, f, fmt.Sprintf("changed after %d of its records were produced (size %d, version %s then; size %d, version %s now); those records stay in %s",
			e.Next, e.Size, e.Version, f.Size, f.Version, cfg.Topic))
	case !known || !e.same(f):
		e = entry{Source: cfg.source(), Name: f.Name, Size: f.Size, Version: f.Version, State: stateProducing}
	}

	// First pass: the whole file's framing, before its first record.
	n, err := s.count(ctx, f)
	if errors.Is(err, fs.ErrNotExist) { // taken away since it was listed
		return false, nil
	}
	var bad *formatError
	if errors.As(err, &bad) {
		return true, s.fail(ctx, f, bad.reason)
	}
	if err != nil {
		return false, err
	}
	if e.Next > 0 {
		s.w.log.Info("resuming file", "file", f.Name, "from_record", e.Next, "records", n)
	}

	// Second pass: produce from e.Next, a transaction per chunk.
	rc, err := s.w.src.open(ctx, f)
	if err != nil {
		return false, fmt.Errorf("opening %s: %w", f.Name, err)
	}
	defer rc.Close()
	var (
		chunk []json.RawMessage
		bytes int
	)
	err = values(rc, cfg.MaxRecordBytes, func(i int64, v json.RawMessage) error {
		if i < e.Next {
			return nil
		}
		chunk = append(chunk, v)
		bytes += len(v)
		last := i+1 == n
		if !last && len(chunk) < cfg.ChunkRecords && bytes < cfg.ChunkBytes {
			return nil
		}
		if ctx.Err() != nil {
			return errStopping
		}
		next := e
		next.Next = i + 1
		if last {
			next.State = stateDone
		}
		if err := s.commit(ctx, next, chunk); err != nil {
			return err
		}
		e = next
		chunk, bytes = chunk[:0], 0
		return nil
	})
	if errors.Is(err, errStopping) {
		return true, ctx.Err()
	}
	if err != nil {
		return true, fmt.Errorf("producing %s: %w", f.Name, err)
	}
	if e.State != stateDone { // no record left to carry the done mark
		if e.Next != n {
			return true, fmt.Errorf("producing %s: it has %d records now, %d when it was checked", f.Name, e.Next, n)
		}
		e.State = stateDone
		if err := s.commit(ctx, e, nil); err != nil {
			return true, fmt.Errorf("producing %s: %w", f.Name, err)
		}
	}
	s.w.stats.fileDone(e.Next)
	s.w.log.Info("file done", "file", f.Name, "records", e.Next)
	return true, s.w.src.finish(ctx, f, stateDone, "")
}

// count reads f through and returns its number of values, or a
// *formatError.
func (s *session) count(ctx context.Context, f file) (int64, error) {
	rc, err := s.w.src.open(ctx, f)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", f.Name, err)
	}
	defer rc.Close()
	var n int64
	err = values(rc, s.w.cfg.MaxRecordBytes, func(int64, json.RawMessage) error {
		n++
		if n%65536 == 0 {
			return ctx.Err()
		}
		return nil
	})
	return n, err
}

// fail commits f's entry as failed, with reason, producing none of its
// records, and then puts f away.
func (s *session) fail(ctx context.Context, f file, reason string) error {
	e := entry{Source: s.w.cfg.source(), Name: f.Name, Size: f.Size, Version: f.Version, State: stateFailed, Reason: reason}
	if err := s.commit(ctx, e, nil); err != nil {
		return fmt.Errorf("failing %s: %w", f.Name, err)
	}
	s.w.stats.fileFailed()
	s.w.log.Warn("file failed; none of its records produced", "file", f.Name, "reason", reason)
	return s.w.src.finish(ctx, f, stateFailed, reason)
}

// commit produces vals to the topic and e to the manifest in one
// transaction, and commits it. The transaction runs to its end even if ctx
// ends (bounded by CommitTimeout), so that a stop never leaves it open. On
// error the session must end: whether the transaction committed is then
// learned from the manifest by the next session.
func (s *session) commit(ctx context.Context, e entry, vals []json.RawMessage) error {
	cfg := &s.w.cfg
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.CommitTimeout)
	defer cancel()
	if err := s.cl.BeginTransaction(); err != nil {
		return err
	}
	value, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		markErr error
	)
	s.cl.Produce(tctx, &kgo.Record{Topic: cfg.ManifestTopic, Key: manifestKey(e.Source, e.Name), Value: value}, func(_ *kgo.Record, err error) {
		mu.Lock()
		markErr = err
		mu.Unlock()
	})
	// Records flushes, which waits for the manifest record too.
	_, err = produce.Records(tctx, s.cl, cfg.Topic, vals, cfg.KeyField, nil)
	mu.Lock()
	if err == nil && markErr != nil {
		err = fmt.Errorf("producing to %s: %w", cfg.ManifestTopic, markErr)
	}
	mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.cl.EndTransaction(tctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	s.manifest[e.Name] = e
	s.w.stats.committed(len(vals), e.Name)
	return nil
}

// fenced reports whether err says another producer claimed the
// transactional id (a second watch of the same source), as Kafka says it:
// PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH from a broker that bumps the
// epoch at each transaction's end (KIP-890). The coordinator also bumps it
// when a transaction outlives its timeout, which CommitTimeout keeps from
// happening unless the process was frozen; either way the producer is
// done, as the Java client treats it too. Retrying would fence the other
// watch in turn, and the two would take turns forever.
func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}
