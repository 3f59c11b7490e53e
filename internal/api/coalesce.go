package api

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// coalescer merges concurrent lookups into one query ("natural batching").
//
// A request queues its name, and if one of the query slots is free it
// starts a drainer in it: a goroutine that takes everything queued (up to
// maxBatch lookups), answers it with one query, and repeats until the queue
// is empty. Lookups that arrive while every slot is busy wait for the next
// query of a drainer, and share it. Nothing waits on a timer: under light
// load each lookup runs alone, as soon as it arrives.
//
// Each query starts after every lookup in it was queued, so a request sees
// at least what was committed before it arrived, as it would alone.
// Queries don't carry a request's context (others wait on them); they are
// bounded by the store's query timeout. A request waits at most timeout in
// all, however busy the slots are, and then gets an error that wraps
// context.DeadlineExceeded. get is safe for concurrent use.
type coalescer struct {
	users    Users
	limit    int // users per name
	maxBatch int // names per query
	timeout  time.Duration
	queue    chan *lookup
	slots    chan struct{}
}

// lookup is one request's place in the queue.
type lookup struct {
	ctx  context.Context // the request's; a lookup whose request ended is skipped
	name string
	done chan result // buffered: a drainer never blocks on it
}

type result struct {
	users []store.Profile
	err   error
}

// newCoalescer runs at most slots queries at a time, each for at most
// maxBatch names. queueLen bounds the lookups waiting (the server's
// in-flight limit, so a send never waits long).
func newCoalescer(users Users, limit, slots, maxBatch, queueLen int, timeout time.Duration) *coalescer {
	return &coalescer{
		users:    users,
		limit:    limit,
		maxBatch: maxBatch,
		timeout:  timeout,
		queue:    make(chan *lookup, queueLen),
		slots:    make(chan struct{}, slots),
	}
}

// get returns up to c.limit live users named name. It blocks until its
// query has answered, ctx is done or c.timeout has passed.
func (c *coalescer) get(ctx context.Context, name string) ([]store.Profile, error) {
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	l := &lookup{ctx: ctx, name: name, done: make(chan result, 1)}
	select {
	case c.queue <- l:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, fmt.Errorf("queueing the user lookup: %w", context.DeadlineExceeded)
	}
	c.startDrainer()
	select {
	case r := <-l.done:
		return r.users, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, fmt.Errorf("waiting for the user lookup: %w", context.DeadlineExceeded)
	}
}

// startDrainer starts a drainer if a slot is free. Called after queueing;
// drain checks the queue again after giving its slot back, so no lookup is
// left queued with no drainer.
func (c *coalescer) startDrainer() {
	select {
	case c.slots <- struct{}{}:
		go c.drain()
	default:
	}
}

// drain holds a slot: it answers queued lookups until the queue is empty,
// then gives the slot back.
func (c *coalescer) drain() {
	for {
		for c.runBatch() {
		}
		<-c.slots
		// A lookup queued after the last empty check, while this slot
		// was still held, found no free slot: take it over.
		if len(c.queue) == 0 {
			return
		}
		select {
		case c.slots <- struct{}{}:
		default:
			return // another drainer has it
		}
	}
}

// runBatch takes up to maxBatch live lookups from the queue, queries their
// distinct names once and answers each. It reports whether the queue had
// anything.
func (c *coalescer) runBatch() bool {
	var batch []*lookup
	took := false
	for len(batch) < c.maxBatch {
		var l *lookup
		select {
		case l = <-c.queue:
		default:
		}
		if l == nil {
			break
		}
		took = true
		if l.ctx.Err() == nil {
			batch = append(batch, l)
		}
	}
	if len(batch) == 0 {
		return took
	}
	sent := 0
	defer func() {
		// A panic below must not take the process (and its ingest) down
		// from this goroutine: the requests get it as a 500.
		if p := recover(); p != nil {
			err := &panicError{what: "user lookup", value: p, stack: debug.Stack()}
			for _, l := range batch[sent:] {
				l.done <- result{err: err}
			}
		}
	}()
	names := make([]string, 0, len(batch))
	seen := make(map[string]struct{}, len(batch))
	for _, l := range batch {
		if _, ok := seen[l.name]; !ok {
			seen[l.name] = struct{}{}
			names = append(names, l.name)
		}
	}
	found, err := c.users.UsersByNames(context.Background(), names, c.limit)
	for _, l := range batch {
		r := result{err: err}
		if err == nil {
			// Lookups of the same name share the slice: read-only.
			if r.users = found[l.name]; r.users == nil {
				r.users = []store.Profile{}
			}
		}
		l.done <- r
		sent++
	}
	return true
}
