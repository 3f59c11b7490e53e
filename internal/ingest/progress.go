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

// reportProgress logs one line every interval in which records were
// committed: how many, the rate, the dead letters and the commits, and the
// totals since start. An idle stream logs nothing. It blocks until ctx
// ends, then logs what the last interval committed, if anything.
func (c *Consumer) reportProgress(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastRecords, lastDead, lastBatches int64
	last := time.Now()
	report := func() {
		records, dead, batches := c.progress.records.Load(), c.progress.deadLetters.Load(), c.progress.batches.Load()
		if records == lastRecords && dead == lastDead {
			return
		}
		now := time.Now()
		c.log.Info("progress",
			"records", records-lastRecords,
			"per_second", int64(float64(records-lastRecords)/now.Sub(last).Seconds()),
			"dead_letters", dead-lastDead,
			"commits", batches-lastBatches,
			"records_total", records,
			"dead_letters_total", dead)
		lastRecords, lastDead, lastBatches, last = records, dead, batches, now
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
