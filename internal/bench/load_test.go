package bench

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestInterleave: tests compared with each other take turns, slice by
// slice, until each has run for d, so that a change in the machine's
// background load weighs on each alike.
func TestInterleave(t *testing.T) {
	var mu sync.Mutex
	var order []int
	test := func(id int) loadFunc {
		return func(context.Context, int, *rand.Rand) error {
			mu.Lock()
			if len(order) == 0 || order[len(order)-1] != id {
				order = append(order, id)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			return nil
		}
	}
	const d, slice = 120 * time.Millisecond, 30 * time.Millisecond
	start := time.Now()
	res, err := interleave(context.Background(), 2, d, slice, test(0), test(1))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*d {
		t.Errorf("took %s, want at least %s (each test for %s)", took, 2*d, d)
	}
	// 4 slices each: 0 1 0 1 0 1 0 1.
	if len(order) != 8 {
		t.Errorf("turns %v: want 8 alternating slices", order)
	}
	for i, r := range res {
		// 2 workers, about 1 call a millisecond each.
		if r.RPS < 500 || r.RPS > 2100 || r.P50 < 1 {
			t.Errorf("test %d: %+v, want about 2,000 req/s at 1 ms", i, r)
		}
	}
}
