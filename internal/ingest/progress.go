package ingest

import (
	"context"
	"sync/atomic"
	"time"
)

// progress counts what the lanes commit, for the periodic progress line.
// Goroutine-safe.
type progress struct {
	records     atomic.Int64 // valid records committed
	deadLetters atomic.Int64 // dead letters whose offsets were committed
	batches     atomic.Int64 // lane shares committed
}

// progressCounts is a reading of progress.
type progressCounts struct{ records, deadLetters, batches int64 }

func (p *progress) read() progressCounts {
	return progressCounts{p.records.Load(), p.deadLetters.Load(), p.batches.Load()}
}

// progressLine returns the attributes of the line for an interval of d that
// went from prev to cur, or false when nothing was committed in it (an idle
// stream logs nothing).
func progressLine(prev, cur progressCounts, d time.Duration) ([]any, bool) {
	if cur.records == prev.records && cur.deadLetters == prev.deadLetters {
		return nil, false
	}
	rate := int64(0)
	if d > 0 {
		rate = int64(float64(cur.records-prev.records) / d.Seconds())
	}
	return []any{
		"records", cur.records - prev.records,
		"per_second", rate,
		"dead_letters", cur.deadLetters - prev.deadLetters,
		"commits", cur.batches - prev.batches,
		"records_total", cur.records,
		"dead_letters_total", cur.deadLetters,
	}, true
}

// reportProgress logs a progressLine every interval, with the records the
// member's partitions are behind (lag: the sum of
// streamjoin_ingest_consumer_lag_records). It blocks until ctx ends, then
// logs what the last interval committed, if anything.
func (c *Consumer) reportProgress(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev, last := progressCounts{}, time.Now()
	report := func() {
		cur, now := c.progress.read(), time.Now()
		if attrs, ok := progressLine(prev, cur, now.Sub(last)); ok {
			c.log.Info("progress", append(attrs, "lag", c.behind.total())...)
		}
		prev, last = cur, now // the rate is per interval, idle ones included
	}
	for {
		select {
		case <-ctx.Done():
			report()
			return
		case <-t.C:
			report()
		}
	}
}
