package ingest

import (
	"context"
	"errors"
	"sync"

	"github.com/streamjoin/streamjoin/internal/store"
)

// laneDepth is how many batches may wait in a lane's queue behind the one it
// commits. With the batch being prepared, that keeps each PostgreSQL
// connection fed without holding more than a few polls in memory.
const laneDepth = 1

// lanes commit batches, one lane per writer (Config.Writers). A batch is
// split by partition number among the lanes (partition mod writers), and
// each lane commits its shares one transaction at a time, in the order they
// were submitted. Lanes never share a partition, so their transactions never
// touch the same offset row, and the batches of one partition commit in the
// order they were prepared, as the fenced advance requires: each one's From
// is the previous one's To. A lane does not wait for the others, so neither
// a slower writer nor the next poll leaves a connection idle.
//
// submit is called from the polling goroutine only; close once, after the
// last submit.
type lanes struct {
	c      *Consumer
	lag    *lagCommitter
	failed context.CancelCauseFunc
	queues []chan *pending
	wg     sync.WaitGroup
	errs   []error // per lane; read after wg.Wait
}

// startLanes starts one goroutine per writer. They commit with ctx, and a
// commit that fails for good is reported through failed, after which that
// lane commits nothing more (the batches queued behind it would be
// refused: their From is where the failed one would have left off).
func (c *Consumer) startLanes(ctx context.Context, lag *lagCommitter, failed context.CancelCauseFunc) *lanes {
	ls := &lanes{c: c, lag: lag, failed: failed, errs: make([]error, c.cfg.Writers)}
	for i := range c.cfg.Writers {
		q := make(chan *pending, laneDepth)
		ls.queues = append(ls.queues, q)
		ls.wg.Add(1)
		go func() {
			defer ls.wg.Done()
			for p := range q {
				if ls.errs[i] != nil {
					continue
				}
				if err := c.write(ctx, p.b, p.gens); err != nil {
					ls.errs[i] = err
					failed(err)
					continue
				}
				c.finish(p, lag)
			}
		}()
	}
	return ls
}

// submit splits p among the lanes and queues each share, blocking while a
// lane's queue is full. It returns ctx's error if ctx ends first; the shares
// queued by then still commit.
func (ls *lanes) submit(ctx context.Context, p *pending) error {
	n := len(ls.queues)
	for _, sub := range p.b.Split(n) {
		lane := int(sub.Offsets[0].Partition) % n
		share := &pending{b: sub, gens: p.gens, started: p.started}
		for _, d := range p.dead {
			if int(sourceOf(d).tp.Partition)%n == lane {
				share.dead = append(share.dead, d)
			}
		}
		select {
		case ls.queues[lane] <- share:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// close lets the lanes commit what is queued, waits for them, and returns
// their errors.
func (ls *lanes) close() error {
	for _, q := range ls.queues {
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
