package ingest

import (
	"testing"
	"time"
)

// An interval with nothing committed gives no line; one with commits gives
// the interval's deltas, its rate and the totals.
func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prev, cur progressCounts
		want      map[string]int64 // nil: no line
	}{
		{"idle from the start", progressCounts{}, progressCounts{}, nil},
		{"idle after work", progressCounts{500, 3, 2}, progressCounts{500, 3, 2}, nil},
		{"records", progressCounts{500, 3, 2}, progressCounts{2500, 3, 4},
			map[string]int64{"records": 2000, "per_second": 1000, "dead_letters": 0, "commits": 2, "records_total": 2500, "dead_letters_total": 3}},
		{"only dead letters", progressCounts{500, 3, 2}, progressCounts{500, 5, 3},
			map[string]int64{"records": 0, "per_second": 0, "dead_letters": 2, "commits": 1, "records_total": 500, "dead_letters_total": 5}},
	} {
		attrs, ok := progressLine(tc.prev, tc.cur, 2*time.Second)
		if ok != (tc.want != nil) {
			t.Errorf("%s: line = %v, want one: %v", tc.name, ok, tc.want != nil)
			continue
		}
		got := map[string]int64{}
		for i := 0; i+1 < len(attrs); i += 2 {
			got[attrs[i].(string)] = attrs[i+1].(int64)
		}
		for k, v := range tc.want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s: %s = %v (present %v), want %d", tc.name, k, g, ok, v)
			}
		}
	}
}
