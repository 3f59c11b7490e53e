package ingest

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// dlqUnread marks a partition whose dead-letter tail this claim has not
// read yet. It is read just before the claim's first dead-letter produce,
// not at assignment, so that dead letters a replaced member still added
// after the claim are seen too.
const dlqUnread = -2

// partState is what a member knows of a partition it has claimed.
type partState struct {
	next *int64 // stored next offset, as this member last left it; nil: none
	gen  int64  // the generation of this member's claim
	// dlqDone is the highest source offset of this partition already in its
	// dead-letter partition (-1: none), or dlqUnread until this claim first
	// needs it. Dead letters at or below it are not produced again when a
	// predecessor's batch is reprocessed.
	dlqDone int64
	// active is when the partition last had records, or was claimed;
	// idle, whether this member has marked it idle since (watermarks.go).
	active time.Time
	idle   bool
}

// claim claims tps in PostgreSQL, retrying until ctx ends.
func (c *Consumer) claim(ctx context.Context, tps []store.TopicPartition) (map[store.TopicPartition]store.Claim, error) {
	var stored map[store.TopicPartition]store.Claim
	err := retry.Do(ctx, c.retryPolicy(), c.log, "claiming partitions in postgres", func() error {
		var err error
		stored, err = c.st.ClaimOffsets(ctx, tps)
		return err
	})
	return stored, err
}

// adjustOffsets claims newly assigned partitions in PostgreSQL, which fences
// out their previous owner, and replaces the offsets Kafka has committed with
// the ones stored there, the source of truth. It also learns how far each
// partition's dead letters already reached.
func (c *Consumer) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var tps []store.TopicPartition
	for topic, parts := range offsets {
		for p := range parts {
			tps = append(tps, store.TopicPartition{Topic: topic, Partition: p})
		}
	}
	if len(tps) == 0 {
		return offsets, nil
	}
	claims, err := c.claim(ctx, tps)
	if err != nil {
		return nil, err
	}
	start := c.startOffset()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		cl := claims[tp]
		c.owned[tp] = partState{next: cl.Next, gen: cl.Generation, dlqDone: dlqUnread, active: time.Now()}
		c.behind.claimed(tp, cl.Next)
		if cl.Next == nil {
			offsets[tp.Topic][tp.Partition] = start
		} else {
			offsets[tp.Topic][tp.Partition] = kgo.NewOffset().At(*cl.Next).WithEpoch(-1)
		}
	}
	c.log.Debug("claimed partitions; resuming from offsets stored in postgres", "offsets", fmtClaims(claims))
	return offsets, nil
}

// disown drops partitions that another member has claimed since this one
// did. Their buffered records are skipped from now on. Usually Kafka has
// moved them and revokes them at the next rebalance. If Kafka still assigns
// them here, the other claim came from a member that was paused in the
// middle of claiming and has been replaced since; they are marked to be
// claimed again (reclaimPending), or they would stall.
func (c *Consumer) disown(tps []store.TopicPartition, gens map[store.TopicPartition]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if st, ok := c.owned[tp]; ok && st.gen == gens[tp] {
			delete(c.owned, tp)
			delete(c.prepared, tp)
			c.behind.forget(tp)
			if c.assigned[tp] {
				c.reclaim[tp] = time.Now()
			}
		}
	}
}

// reclaimPending claims again the partitions disown marked at least a
// session timeout ago, and rewinds their fetch position to the stored
// offset. Waiting a session timeout first lets a replaced member learn from
// Kafka that it was replaced, so that the two do not take the partition from
// each other in turn. Call it from the polling goroutine before
// AllowRebalance, as kgo requires for SetOffsets.
func (c *Consumer) reclaimPending(ctx context.Context, cl *kgo.Client) error {
	c.mu.Lock()
	var tps []store.TopicPartition
	for tp, since := range c.reclaim {
		if time.Since(since) >= c.cfg.SessionTimeout {
			tps = append(tps, tp)
			delete(c.reclaim, tp)
		}
	}
	c.mu.Unlock()
	if len(tps) == 0 {
		return nil
	}
	claims, err := c.claim(ctx, tps)
	if err != nil {
		return err
	}
	seek := make(map[string]map[int32]kgo.EpochOffset)
	c.mu.Lock()
	for _, tp := range tps {
		claim := claims[tp]
		if !c.assigned[tp] {
			continue // revoked meanwhile
		}
		c.owned[tp] = partState{next: claim.Next, gen: claim.Generation, dlqDone: dlqUnread, active: time.Now()}
		c.behind.claimed(tp, claim.Next)
		next := int64(0) // nothing committed: from the start (a reset if it is gone)
		if claim.Next != nil {
			next = *claim.Next
		}
		if seek[tp.Topic] == nil {
			seek[tp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		seek[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: next}
	}
	c.mu.Unlock()
	cl.SetOffsets(seek)
	c.log.Warn("claimed again partitions that a replaced member had claimed while Kafka still assigns them here", "partitions", tps)
	return nil
}

func fmtClaims(m map[store.TopicPartition]store.Claim) map[string]string {
	out := make(map[string]string, len(m))
	for tp, cl := range m {
		v := "none"
		if cl.Next != nil {
			v = strconv.FormatInt(*cl.Next, 10)
		}
		out[tp.String()] = v + " (generation " + strconv.FormatInt(cl.Generation, 10) + ")"
	}
	return out
}
