package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// prepareTopics waits for the brokers, creates missing topics if configured
// to, and checks that every source partition has a dead-letter partition of
// the same number.
func (c *Consumer) prepareTopics(ctx context.Context) error {
	cl, err := c.conn.NewClient("admin")
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	sources := []string{c.cfg.UserTopic, c.cfg.OrgTopic}
	return retry.Do(ctx, c.retryPolicy(), c.log, "preparing kafka topics", func() error {
		if c.cfg.CreateTopics {
			if err := createTopics(ctx, adm, c.cfg.Partitions, c.cfg.ReplicationFactor, sources...); err != nil {
				return err
			}
		}
		details, err := adm.ListTopics(ctx, sources...)
		if err != nil {
			return fmt.Errorf("listing topics: %w", err)
		}
		var all []store.TopicPartition
		for _, d := range details {
			for _, p := range d.Partitions.Numbers() {
				all = append(all, store.TopicPartition{Topic: d.Topic, Partition: p})
			}
		}
		// Every partition counts for the watermarks, claimed or not yet.
		if err := c.st.EnsurePartitions(ctx, all); err != nil {
			return err
		}
		for _, topic := range sources {
			d, ok := details[topic]
			if !ok || d.Err != nil {
				return fmt.Errorf("source topic %s does not exist (create-topics is off): %v", topic, d.Err)
			}
			dlq := c.DLQTopic(topic)
			if c.cfg.CreateTopics {
				if err := createTopics(ctx, adm, int32(len(d.Partitions)), c.cfg.ReplicationFactor, dlq); err != nil {
					return err
				}
			}
			dd, err := adm.ListTopics(ctx, dlq)
			if err != nil {
				return fmt.Errorf("listing dead-letter topics: %w", err)
			}
			dl, ok := dd[dlq]
			if !ok || dl.Err != nil || len(dl.Partitions) == 0 {
				return fmt.Errorf("dead-letter topic %s does not exist (create-topics is off): %v", dlq, dl.Err)
			}
			if len(dl.Partitions) < len(d.Partitions) {
				return retry.Permanent(fmt.Errorf("dead-letter topic %s has %d partitions, fewer than the %d of %s: exactly-once dead letters need one for each source partition; add partitions to it", dlq, len(dl.Partitions), len(d.Partitions), topic))
			}
		}
		return nil
	})
}

func createTopics(ctx context.Context, adm *kadm.Client, partitions int32, rf int16, topics ...string) error {
	resps, err := adm.CreateTopics(ctx, partitions, rf, nil, topics...)
	if err != nil {
		return fmt.Errorf("creating topics %v: %w", topics, err)
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
