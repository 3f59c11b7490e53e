package ingest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/streamjoin/streamjoin/internal/store"
)

// laneDepth is how many shares may wait in a lane's queue behind the one it
// commits. With the batch being prepared, that keeps each PostgreSQL
// connection fed without holding more than a few polls in memory.
const laneDepth = 2

// lanes commit batches in two stages, each with one lane per writer
// (Config.Writers):
//
//   - State lanes upsert a batch's newest event per key (store.WriteState),
//     split by key hash: lane i always gets shard i, so no two state
//     transactions ever hold the same row and none waits for another's
//     locks. State is idempotent and independent of order, so it needs no
//     fence and no offset.
//   - Log lanes append the raw logs, run the steps and advance the offsets
//     (store.WriteLog), split by partition (partition mod writers), each
//     lane one transaction at a time, in the order the shares were
//     submitted: a share's From is the previous share's To. A log share
//     starts only once its batch's state has committed, so an offset never
//     moves past an event whose state is not stored. A crash in between
//     replays events whose state is already there, which changes nothing.
//
// The state of the next batch commits while the log of this one does. No
// lane waits for another lane of its stage.
//
// submit is called from the polling goroutine only; close once, after the
// last submit.
type lanes struct {
	c       *Consumer
	lag     *lagCommitter
	failed  func(error)
	state   []chan stateShare
	logs    []chan *pending
	wg      sync.WaitGroup
	errs    []error // one per lane, state lanes first; read after wg.Wait
	writers int
}

// stateGate is one batch's state stage: done closes once every share of it
// has been through its state lane; err, set before that, is the first
// failure.
type stateGate struct {
	done chan struct{}
	left atomic.Int32
	mu   sync.Mutex
	err  error
}

func newStateGate(shares int) *stateGate {
	g := &stateGate{done: make(chan struct{})}
	g.left.Store(int32(shares))
	if shares == 0 {
		close(g.done)
	}
	return g
}

// release records one share's outcome.
func (g *stateGate) release(err error) {
	if err != nil {
		g.mu.Lock()
		if g.err == nil {
			g.err = err
		}
		g.mu.Unlock()
	}
	if g.left.Add(-1) == 0 {
		close(g.done)
	}
}

func (g *stateGate) error() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

type stateShare struct {
	b    *store.Batch
	gate *stateGate
}

// startLanes starts the lanes. They commit with ctx; a commit that fails for
// good is reported through failed, after which its lane commits nothing
// more, and a log share whose state failed is not committed.
func (c *Consumer) startLanes(ctx context.Context, lag *lagCommitter, failed func(error)) *lanes {
	n := c.cfg.Writers
	ls := &lanes{c: c, lag: lag, failed: failed, errs: make([]error, 2*n), writers: n}
	for i := range n {
		q := make(chan stateShare, laneDepth)
		ls.state = append(ls.state, q)
		ls.wg.Add(1)
		go func() {
			defer ls.wg.Done()
			for s := range q {
				err := ls.errs[i]
				if err == nil {
					if err = c.writeState(ctx, s.b); err != nil {
						ls.errs[i] = err
						failed(err)
					}
				}
				s.gate.release(err)
			}
		}()
	}
	for i := range n {
		q := make(chan *pending, laneDepth)
		ls.logs = append(ls.logs, q)
		ls.wg.Add(1)
		go func() {
			defer ls.wg.Done()
			for p := range q {
				if ls.errs[n+i] != nil {
					continue
				}
				// The state lanes always release their shares, so
				// this wait ends; a failed state stage fails this.
				<-p.gate.done
				if err := p.gate.error(); err != nil {
					ls.errs[n+i] = err
					continue
				}
				if err := c.write(ctx, p.b, p.gens); err != nil {
					ls.errs[n+i] = err
					failed(err)
					continue
				}
				c.finish(p, lag)
			}
		}()
	}
	return ls
}

// submit queues p's state shares and log shares, blocking while a lane's
// queue is full. It returns ctx's error if ctx ends first; what was queued
// by then still commits (a log share only if its batch's state did).
func (ls *lanes) submit(ctx context.Context, p *pending) error {
	keyed := p.b.SplitByKey(ls.writers)
	shares := 0
	for _, k := range keyed {
		if len(k.Users)+len(k.Orgs) > 0 {
			shares++
		}
	}
	gate := newStateGate(shares)
	var queued int
	for i, k := range keyed {
		if len(k.Users)+len(k.Orgs) == 0 {
			continue
		}
		select {
		case ls.state[i] <- stateShare{b: k, gate: gate}:
			queued++
		case <-ctx.Done():
			// The shares never queued will not be written: fail the
			// gate for them, so that no log share of p commits.
			for range shares - queued {
				gate.release(ctx.Err())
			}
			return ctx.Err()
		}
	}
	n := ls.writers
	for _, sub := range p.b.Split(n) {
		lane := int(sub.Offsets[0].Partition) % n
		share := &pending{b: sub, gens: p.gens, started: p.started, gate: gate}
		for _, d := range p.dead {
			if int(sourceOf(d).tp.Partition)%n == lane {
				share.dead = append(share.dead, d)
			}
		}
		select {
		case ls.logs[lane] <- share:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// close lets the lanes commit what is queued, waits for them, and returns
// their errors.
func (ls *lanes) close() error {
	for _, q := range ls.state {
		close(q)
	}
	for _, q := range ls.logs {
		close(q)
	}
	ls.wg.Wait()
	return errors.Join(ls.errs...)
}

// preparedAt is where the newest batch prepared for a partition leaves it,
// under the claim it was prepared for.
type preparedAt struct {
	gen  int64
	next int64
}

// recordPrepared notes where b leaves its partitions, for preparing the
// batch after it before b commits.
func (c *Consumer) recordPrepared(b *store.Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range b.Offsets {
		c.prepared[store.TopicPartition{Topic: a.Topic, Partition: a.Partition}] = preparedAt{gen: a.Generation, next: a.To}
	}
}
