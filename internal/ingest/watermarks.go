package ingest

import (
	"context"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// markActive records that the partitions in gens (under those generations)
// had records at now: they are not idle.
func (c *Consumer) markActive(gens map[store.TopicPartition]int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tp, gen := range gens {
		if st, ok := c.owned[tp]; ok && st.gen == gen {
			st.active, st.idle = now, false
			c.owned[tp] = st
		}
	}
}

// runWatermarks, every WatermarkInterval until ctx ends: marks idle the
// owned partitions that are caught up and have had no records for
// IdleTimeout, then advances the topics' watermarks in PostgreSQL (any
// member may: they only move forward) and exports them. Failures are
// logged at debug and tried again at the next tick: a watermark that waits
// a tick is late, not wrong.
func (c *Consumer) runWatermarks(ctx context.Context) {
	t := time.NewTicker(c.cfg.WatermarkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.markIdle(ctx, time.Now()); err != nil && ctx.Err() == nil {
			c.log.Debug("marking idle partitions", "err", err)
		}
		ws, err := c.st.AdvanceWatermarks(ctx, c.cfg.MaxOutOfOrderness)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Debug("advancing watermarks", "err", err)
			}
			continue
		}
		if c.cfg.ReleaseEnriched {
			c.drainOutput(ctx, "releasing pending enriched events", func() (int, error) {
				return c.st.ReleaseEnriched(ctx, c.cfg.OrgTopic, releaseLimit)
			})
		}
		if c.cfg.FireWindows {
			c.drainOutput(ctx, "firing activity windows", func() (int, error) {
				return c.st.FireWindows(ctx, c.cfg.UserTopic, releaseLimit)
			})
		}
		now := time.Now()
		for _, w := range ws {
			if !w.MaxEventTime.IsZero() {
				c.metrics.eventTime.WithLabelValues(w.Topic).Set(unixSeconds(w.MaxEventTime))
			}
			if w.Watermark.IsZero() {
				continue
			}
			c.metrics.watermark.WithLabelValues(w.Topic).Set(unixSeconds(w.Watermark))
			c.metrics.watermarkLag.WithLabelValues(w.Topic).Set(now.Sub(w.Watermark).Seconds())
			idle := 0.0
			if w.Idle {
				idle = 1
			}
			c.metrics.watermarkIdle.WithLabelValues(w.Topic).Set(idle)
		}
	}
}

// releaseLimit is the most pending enriched events, or activity windows,
// one transaction of the watermark loop emits.
const releaseLimit = 10000

// drainOutput calls emit, which emits at most releaseLimit rows of an
// output the watermarks now let go, until it emits fewer. A failure is
// logged at debug (as what) and left to the next tick, as the
// watermarks' are.
func (c *Consumer) drainOutput(ctx context.Context, what string, emit func() (int, error)) {
	for {
		n, err := emit()
		if err != nil {
			if ctx.Err() == nil {
				c.log.Debug(what, "err", err)
			}
			return
		}
		if n < releaseLimit {
			return
		}
	}
}

// markIdle marks idle, in PostgreSQL, the owned partitions that have had no
// records for IdleTimeout and have nothing left to read: no committed
// record at or past the stored offset (read read_committed, so that a
// transaction marker after the last record does not count).
func (c *Consumer) markIdle(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	quiet := map[store.TopicPartition]partState{}
	byTopic := map[string][]int32{}
	for tp, st := range c.owned {
		if !st.idle && now.Sub(st.active) >= c.cfg.IdleTimeout {
			quiet[tp] = st
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
		}
	}
	c.mu.Unlock()
	var marks []store.IdleMark
	for topic, parts := range byTopic {
		last, err := c.conn.LastRecords(ctx, "idle-check", topic, parts)
		if err != nil {
			return err
		}
		for _, p := range parts {
			tp := store.TopicPartition{Topic: topic, Partition: p}
			st := quiet[tp]
			if r, ok := last[p]; ok && (st.next == nil || r.Offset >= *st.next) {
				continue // a record not committed in PostgreSQL yet: not caught up
			}
			marks = append(marks, store.IdleMark{Topic: topic, Partition: p, Generation: st.gen, Next: st.next, Since: st.active})
		}
	}
	marked, err := c.st.MarkIdle(ctx, marks)
	if err != nil {
		return err
	}
	c.mu.Lock()
	for _, tp := range marked {
		if st, ok := c.owned[tp]; ok && st.gen == quiet[tp].gen && st.active.Equal(quiet[tp].active) {
			st.idle = true
			c.owned[tp] = st
		}
	}
	c.mu.Unlock()
	c.metrics.idleMarks.Add(float64(len(marked)))
	if len(marked) > 0 {
		c.log.Debug("partitions idle", "partitions", marked)
	}
	return nil
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
