package changelog

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// topics returns the relay's output topics that are on: the changelog,
// the enriched topic, the activity topic.
func (c Config) topics() []string {
	var out []string
	for _, t := range []string{c.Topic, c.EnrichedTopic, c.ActivityTopic} {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// duplicateTopic returns a topic named twice among the outputs, or "".
func (c Config) duplicateTopic() string {
	seen := map[string]bool{}
	for _, t := range c.topics() {
		if seen[t] {
			return t
		}
		seen[t] = true
	}
	return ""
}

// prepareTopic waits for the brokers, creates each output topic that is
// missing if CreateTopic is set (compacted, with as many partitions as the
// user topic), and records their partitions.
func (r *Relay) prepareTopic(ctx context.Context) error {
	cl, err := r.conn.NewClient("changelog-admin")
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	r.partitions = map[string][]int32{}
	return retry.Do(ctx, retry.Policy{Max: r.cfg.RetryBackoffMax}, r.log, "preparing the output topics", func() error {
		details, err := adm.ListTopics(ctx, append([]string{r.cfg.SourceTopic}, r.cfg.topics()...)...)
		if err != nil {
			return fmt.Errorf("listing topics: %w", err)
		}
		src, ok := details[r.cfg.SourceTopic]
		if !ok || src.Err != nil {
			return fmt.Errorf("user topic %s does not exist yet: %v", r.cfg.SourceTopic, src.Err)
		}
		for _, topic := range r.cfg.topics() {
			if _, done := r.partitions[topic]; done {
				continue
			}
			if err := r.prepareOne(ctx, adm, topic, details[topic], len(src.Partitions)); err != nil {
				return err
			}
		}
		return nil
	})
}

// prepareOne creates topic if it is missing (d is its listing) and records
// its partitions.
func (r *Relay) prepareOne(ctx context.Context, adm *kadm.Client, topic string, d kadm.TopicDetail, srcPartitions int) error {
	if d.Topic == "" || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		if !r.cfg.CreateTopic {
			return fmt.Errorf("output topic %s does not exist (create-topics is off)", topic)
		}
		n := int32(srcPartitions)
		compact := "compact"
		_, err := adm.CreateTopic(ctx, n, r.cfg.ReplicationFactor, map[string]*string{"cleanup.policy": &compact}, topic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating output topic %s: %w", topic, err)
		}
		if err != nil {
			return fmt.Errorf("output topic %s created by another process; reading its partitions", topic)
		}
		r.log.Info("created an output topic", "topic", topic, "partitions", n, "cleanup_policy", compact)
		parts := make([]int32, n)
		for i := range parts {
			parts[i] = int32(i)
		}
		r.partitions[topic] = parts
		return nil
	}
	if d.Err != nil {
		return fmt.Errorf("listing output topic %s: %w", topic, d.Err)
	}
	r.partitions[topic] = d.Partitions.Numbers()
	if len(d.Partitions) != srcPartitions {
		r.log.Warn("an output topic's partition count differs from the user topic's; keys still go to one partition each", "topic", topic, "partitions", len(d.Partitions), "user_topic_partitions", srcPartitions)
	}
	return nil
}

// position reads where the output stopped: the highest outbox position in
// the header of the last committed record of any partition of any output
// topic (the zero position if they are empty). Transactions commit whole
// pages in order, so every row up to it is in the topics and none after it.
func (r *Relay) position(ctx context.Context) (store.OutboxPosition, error) {
	var pos store.OutboxPosition
	for _, topic := range r.cfg.topics() {
		last, err := r.conn.LastRecords(ctx, "changelog-tail", topic, r.partitions[topic])
		if err != nil {
			return store.OutboxPosition{}, fmt.Errorf("reading where %s stopped: %w", topic, err)
		}
		for p, rec := range last {
			at, ok := PositionOf(rec)
			if !ok {
				r.log.Warn("the last record of an output partition has no outbox position; was it written by something else?", "topic", topic, "partition", p, "offset", rec.Offset)
				continue
			}
			if pos.Less(at) {
				pos = at
			}
		}
	}
	return pos, nil
}
