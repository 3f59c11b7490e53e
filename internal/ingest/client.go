package ingest

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/store"
)

func (c *Consumer) startOffset() kgo.Offset {
	if c.cfg.StartOffset == "latest" {
		return kgo.NewOffset().AtEnd()
	}
	return kgo.NewOffset().AtStart()
}

// groupOpts are the group member's options, on top of the connection's: an
// eager sticky group with manual commits that resumes from the offsets
// stored in PostgreSQL, and a manual partitioner for the dead letters it
// produces.
func (c *Consumer) groupOpts() []kgo.Opt {
	start := c.startOffset()
	opts := []kgo.Opt{
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.SessionTimeout(c.cfg.SessionTimeout),
		kgo.RebalanceTimeout(c.cfg.RebalanceTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, c.cfg.SessionTimeout/3)),
		kgo.ConsumeTopics(c.cfg.UserTopic, c.cfg.OrgTopic),
		// Producers may write the sources in Kafka transactions (streamjoin
		// watch does): an aborted record must never be ingested.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Eager rebalances: every member gives up everything and gets its
		// share back in one round. With the cooperative default, the chaos
		// tests saw a member leave mid-rebalance and three partitions stay
		// unassigned for minutes (kfake, franz-go v1.22.3). Eager costs a
		// short full stop per rebalance; claims make it safe either way.
		kgo.Balancers(kgo.StickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxBytes(int32(c.cfg.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(min(c.cfg.FetchMaxBytes, 1<<20))),
		kgo.ConsumeStartOffset(start),
		kgo.ConsumeResetOffset(start),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			c.joined.Store(true)
			c.mu.Lock()
			for topic, ps := range assigned {
				for _, p := range ps {
					c.assigned[store.TopicPartition{Topic: topic, Partition: p}] = true
				}
			}
			c.mu.Unlock()
			c.log.Info("partitions assigned", "assigned", assigned)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
			c.forget(revoked)
			c.log.Info("partitions revoked", "revoked", revoked)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			c.joined.Store(false)
			c.forget(lost)
			c.log.Warn("partitions lost", "lost", lost)
		}),
		// Dead letters go to the DLQ partition of the same number as their
		// source partition (modulo the DLQ's partition count), in order.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
	if c.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.cfg.InstanceID))
	}
	return opts
}

func (c *Consumer) forget(parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			tp := store.TopicPartition{Topic: topic, Partition: p}
			delete(c.owned, tp)
			delete(c.assigned, tp)
			delete(c.reclaim, tp)
			delete(c.prepared, tp)
			c.behind.forget(tp)
		}
	}
}
