package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// echoUsers answers every name but "nobody" with one user of that name, and
// records each query's names. gate, when set, holds every query until it is
// closed. These tests are about the coalescer's concurrency; the SQL behind
// UsersByNames is tested against PostgreSQL in the store package, and the
// API with it in api_test.go.
type echoUsers struct {
	gate    chan struct{}
	err     error
	mu      sync.Mutex
	queries [][]string
	running atomic.Int32
	maxRun  atomic.Int32
}

func (e *echoUsers) UsersByNames(ctx context.Context, names []string, _ int) (map[string][]store.Profile, error) {
	n := e.running.Add(1)
	defer e.running.Add(-1)
	for m := e.maxRun.Load(); n > m && !e.maxRun.CompareAndSwap(m, n); m = e.maxRun.Load() {
	}
	e.mu.Lock()
	e.queries = append(e.queries, slices.Clone(names))
	e.mu.Unlock()
	if e.gate != nil {
		<-e.gate
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("query saw its context canceled: %w", err)
	}
	if e.err != nil {
		return nil, e.err
	}
	out := map[string][]store.Profile{}
	for _, n := range names {
		if n != "nobody" {
			out[n] = []store.Profile{{ID: "id-" + n, Username: n}}
		}
	}
	return out, nil
}

func (e *echoUsers) Ping(context.Context) error { return nil }

func (e *echoUsers) calls() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.queries)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type answer struct {
	name  string
	users []store.Profile
	err   error
}

func lookupAsync(c *coalescer, ctx context.Context, name string, out chan<- answer) {
	go func() {
		users, err := c.get(ctx, name)
		out <- answer{name, users, err}
	}()
}

// busySlot returns a one-slot coalescer over users (whose gate must be set)
// with its slot taken by a query for first, made under ctx, that waits on
// the gate; answers arrive on the returned channel.
func busySlot(t *testing.T, users *echoUsers, timeout time.Duration, ctx context.Context, first string) (*coalescer, chan answer) {
	t.Helper()
	c := newCoalescer(users, 10, 1, 64, 16, timeout)
	out := make(chan answer, 8)
	lookupAsync(c, ctx, first, out)
	waitFor(t, "the first query", func() bool { return len(users.calls()) == 1 })
	return c, out
}

func TestCoalescerMergesLookupsWhileSlotsAreBusy(t *testing.T) {
	t.Parallel()
	users := &echoUsers{gate: make(chan struct{})}
	c, out := busySlot(t, users, 5*time.Second, context.Background(), "first")
	for _, n := range []string{"Snake", "nobody", "Snake"} {
		lookupAsync(c, context.Background(), n, out)
	}
	waitFor(t, "three queued lookups", func() bool { return len(c.queue) == 3 })
	close(users.gate)
	got := map[string]int{}
	for range 4 {
		a := <-out
		if a.err != nil {
			t.Fatalf("get(%q) = %v", a.name, a.err)
		}
		want := 1
		if a.name == "nobody" {
			want = 0
		}
		if a.users == nil || len(a.users) != want || (want == 1 && a.users[0].Username != a.name) {
			t.Errorf("get(%q) = %+v, want %d user(s) named so (and never nil)", a.name, a.users, want)
		}
		got[a.name]++
	}
	calls := users.calls()
	if len(calls) != 2 {
		t.Fatalf("queries = %q, want 2: the first alone, then the three queued ones merged", calls)
	}
	second := slices.Clone(calls[1])
	slices.Sort(second)
	if !slices.Equal(second, []string{"Snake", "nobody"}) {
		t.Errorf("merged query names = %q, want Snake and nobody once each", calls[1])
	}
}

func TestCoalescerRespectsSlotsAndAnswersEveryone(t *testing.T) {
	t.Parallel()
	users := &echoUsers{}
	c := newCoalescer(users, 10, 2, 8, 4096, 5*time.Second)
	// Many more lookups than slots, arriving while drainers give their
	// slots back: none may be left queued without a drainer.
	out := make(chan answer, 3000)
	for i := range 3000 {
		lookupAsync(c, context.Background(), fmt.Sprintf("user-%d", i%37), out)
	}
	for range 3000 {
		a := <-out
		if a.err != nil || len(a.users) != 1 || a.users[0].Username != a.name {
			t.Errorf("get(%q) = %+v, %v; want its own user", a.name, a.users, a.err)
		}
	}
	if m := users.maxRun.Load(); m > 2 {
		t.Errorf("%d queries ran at once, want at most 2 slots", m)
	}
	for _, q := range users.calls() {
		if len(q) > 8 {
			t.Errorf("a query looked up %d names, want at most 8", len(q))
		}
	}
}

// One lookup at a time, each queued while the previous drainer may still be
// giving its slot back: a drainer that left it queued would time it out.
func TestCoalescerLeavesNoLookupBehind(t *testing.T) {
	t.Parallel()
	c := newCoalescer(&echoUsers{}, 10, 1, 64, 16, 2*time.Second)
	for i := range 20000 {
		if _, err := c.get(context.Background(), "x"); err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
	}
}

func TestCoalescerErrorReachesEveryLookupInTheQuery(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	users := &echoUsers{gate: make(chan struct{}), err: boom}
	c, out := busySlot(t, users, 5*time.Second, context.Background(), "a")
	lookupAsync(c, context.Background(), "b", out)
	lookupAsync(c, context.Background(), "c", out)
	waitFor(t, "two queued lookups", func() bool { return len(c.queue) == 2 })
	close(users.gate)
	for range 3 {
		if a := <-out; !errors.Is(a.err, boom) {
			t.Errorf("get(%q) error = %v, want boom", a.name, a.err)
		}
	}
}

// A request going away doesn't cancel the query it started, which others
// share; lookups whose requests went away are not queried.
func TestCoalescerQueryOutlivesItsRequestAndSkipsCanceled(t *testing.T) {
	t.Parallel()
	users := &echoUsers{gate: make(chan struct{})}
	first, cancelFirst := context.WithCancel(context.Background())
	c, out := busySlot(t, users, 5*time.Second, first, "first")
	gone, cancelGone := context.WithCancel(context.Background())
	lookupAsync(c, gone, "gone", out)
	lookupAsync(c, context.Background(), "live", out)
	waitFor(t, "two queued lookups", func() bool { return len(c.queue) == 2 })
	cancelFirst()
	cancelGone()
	close(users.gate)
	got := map[string]answer{}
	for range 3 {
		a := <-out
		got[a.name] = a
	}
	if a := got["live"]; a.err != nil || len(a.users) != 1 {
		t.Errorf("live lookup = %+v, %v; want its user", a.users, a.err)
	}
	for _, n := range []string{"first", "gone"} {
		if !errors.Is(got[n].err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", n, got[n].err)
		}
	}
	calls := users.calls()
	if len(calls) != 2 || !slices.Equal(calls[1], []string{"live"}) {
		t.Errorf("queries = %q, want [first] then [live] only", calls)
	}
}

// However busy the slots are, a request waits at most the lookup timeout
// and then gets an error the API answers with 503.
func TestCoalescerGivesUpAfterTheTimeout(t *testing.T) {
	t.Parallel()
	users := &echoUsers{gate: make(chan struct{})}
	defer close(users.gate)
	start := time.Now()
	c, out := busySlot(t, users, 200*time.Millisecond, context.Background(), "stuck")
	lookupAsync(c, context.Background(), "queued", out)
	for range 2 {
		a := <-out
		if !errors.Is(a.err, context.DeadlineExceeded) || store.Classify(a.err) != store.Unavailable {
			t.Errorf("%s: err = %v, want a DeadlineExceeded the store classifies as Unavailable", a.name, a.err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("both gave up after %s, want about 200ms each", took)
	}
}

type panicUsers struct{ echoUsers }

func (*panicUsers) UsersByNames(context.Context, []string, int) (map[string][]store.Profile, error) {
	panic("boom")
}

func TestCoalescerPanicBecomesAnError(t *testing.T) {
	t.Parallel()
	c := newCoalescer(&panicUsers{}, 10, 1, 64, 16, 5*time.Second)
	for range 2 { // the slot must be usable again after a panic
		_, err := c.get(context.Background(), "x")
		if err == nil || !strings.Contains(err.Error(), "panicked: boom") {
			t.Errorf("get = %v, want the panic as an error", err)
		}
		if status, _ := httpStatus(err); status != 500 {
			t.Errorf("the panic's error answers %d, want 500", status)
		}
	}
}

func TestCoalescerGetReturnsWhenItsRequestEnds(t *testing.T) {
	t.Parallel()
	users := &echoUsers{gate: make(chan struct{})}
	defer close(users.gate)
	c, out := busySlot(t, users, 5*time.Second, context.Background(), "runner")
	ctx, cancel := context.WithCancel(context.Background())
	lookupAsync(c, ctx, "waiter", out)
	waitFor(t, "a queued lookup", func() bool { return len(c.queue) == 1 })
	cancel()
	select {
	case a := <-out:
		if a.name != "waiter" || !errors.Is(a.err, context.Canceled) {
			t.Errorf("got %q, %v; want the waiter, canceled", a.name, a.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a canceled waiter did not return while every slot was busy")
	}
}
