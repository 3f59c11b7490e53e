package cli

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// failFast produces through a client until the first record fails; from
// then on, records still waiting fail too and every later record fails at
// once with that error. Against dead brokers, a large input then waits out
// one delivery timeout in all, rather than one per buffer-full of records.
// It is safe for concurrent use.
type failFast struct {
	cl     *kgo.Client
	ctx    context.Context // the records' context, canceled at the first failure
	cancel context.CancelFunc

	mu  sync.Mutex
	err error
}

// newFailFast wraps cl. Records produced through it live in a context
// derived from ctx; Close releases it.
func newFailFast(ctx context.Context, cl *kgo.Client) *failFast {
	ctx, cancel := context.WithCancel(ctx)
	return &failFast{cl: cl, ctx: ctx, cancel: cancel}
}

// Produce produces r, or fails it at once if a record failed before. Its
// context is the one newFailFast was given, not ctx.
func (f *failFast) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	if err := f.Err(); err != nil {
		promise(r, err)
		return
	}
	f.cl.Produce(f.ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			f.mu.Lock()
			if f.err == nil {
				f.err = err
				f.cancel()
			}
			f.mu.Unlock()
		}
		promise(r, err)
	})
}

// Flush waits until every record produced so far has its result.
func (f *failFast) Flush(ctx context.Context) error { return f.cl.Flush(ctx) }

// Err returns the first record's error, or nil.
func (f *failFast) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Close releases the records' context; it does not close the client.
func (f *failFast) Close() { f.cancel() }
