package api

import (
	"context"
	"errors"

	"github.com/streamjoin/streamjoin/internal/store"
)

// coalescer merges concurrent lookups into one query ("natural batching").
// A request that finds a query slot free runs at once, taking along every
// lookup queued at that moment. One that finds every slot busy queues its
// name, then either receives its answer or, when a slot frees up, takes it
// and runs one query for everything queued. Nothing waits on a timer: under
// light load each lookup runs alone, as soon as it arrives; only lookups
// that arrive while every slot is busy share a query.
//
// Each query starts after every lookup in it was queued, so a request sees
// at least what was committed before it arrived, as it would alone. get is
// safe for concurrent use.
type coalescer struct {
	users    Users
	limit    int // users per name
	maxBatch int // names per query
	queue    chan *lookup
	slots    chan struct{}
}

// lookup is one request's place in the queue.
type lookup struct {
	ctx  context.Context // the request's; a canceled lookup is skipped
	name string
	done chan result // buffered: the runner never blocks on it
}

type result struct {
	users []store.Profile
	err   error
}

// errLookupDropped is what a lookup would get if its runner panicked; it
// surfaces as a 500.
var errLookupDropped = errors.New("lookup dropped by a failed query runner")

// newCoalescer runs at most slots queries at a time, each for at most
// maxBatch names. queueLen bounds the lookups waiting (the server's
// in-flight limit, so a send never waits long).
func newCoalescer(users Users, limit, slots, maxBatch, queueLen int) *coalescer {
	return &coalescer{
		users:    users,
		limit:    limit,
		maxBatch: maxBatch,
		queue:    make(chan *lookup, queueLen),
		slots:    make(chan struct{}, slots),
	}
}

// get returns up to c.limit live users named name. It blocks until its query
// has run or ctx is done.
func (c *coalescer) get(ctx context.Context, name string) ([]store.Profile, error) {
	l := &lookup{ctx: ctx, name: name, done: make(chan result, 1)}
	// A free slot: query this name, and whatever is queued, at once.
	select {
	case c.slots <- struct{}{}:
		c.run(ctx, l)
		<-c.slots
		r := <-l.done
		return r.users, r.err
	default:
	}
	select {
	case c.queue <- l:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		// An answer already there wins over taking a slot.
		select {
		case r := <-l.done:
			return r.users, r.err
		default:
		}
		select {
		case r := <-l.done:
			return r.users, r.err
		case <-ctx.Done():
			return nil, ctx.Err()
		case c.slots <- struct{}{}:
			ran := c.run(ctx, nil)
			<-c.slots
			if !ran {
				// The queue was empty, so another runner holds this
				// lookup and will answer it: wait instead of spinning.
				select {
				case r := <-l.done:
					return r.users, r.err
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
	}
}

// run queries own (if not nil) and what is queued, up to maxBatch live
// lookups, with one query for their distinct names, and answers each. It
// reports whether it took any. The query outlives the runner's own request:
// others wait on it.
func (c *coalescer) run(ctx context.Context, own *lookup) bool {
	var batch []*lookup
	took := own != nil
	if own != nil {
		batch = append(batch, own)
	}
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
		for _, l := range batch[sent:] {
			l.done <- result{err: errLookupDropped}
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
	found, err := c.users.UsersByNames(context.WithoutCancel(ctx), names, c.limit)
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
