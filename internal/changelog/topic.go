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

// prepareTopic waits for the brokers, creates the changelog topic if it is
// missing and CreateTopic is set (compacted, with as many partitions as the
// user topic), and records its partitions.
func (r *Relay) prepareTopic(ctx context.Context) error {
	cl, err := r.conn.NewClient("changelog-admin")
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	return retry.Do(ctx, retry.Policy{Max: r.cfg.RetryBackoffMax}, r.log, "preparing the changelog topic", func() error {
		details, err := adm.ListTopics(ctx, r.cfg.SourceTopic, r.cfg.Topic)
		if err != nil {
			return fmt.Errorf("listing topics: %w", err)
		}
		src, ok := details[r.cfg.SourceTopic]
		if !ok || src.Err != nil {
			return fmt.Errorf("user topic %s does not exist yet: %v", r.cfg.SourceTopic, src.Err)
		}
		d, ok := details[r.cfg.Topic]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			if !r.cfg.CreateTopic {
				return fmt.Errorf("changelog topic %s does not exist (create-topics is off)", r.cfg.Topic)
			}
			n := int32(len(src.Partitions))
			compact := "compact"
			_, err := adm.CreateTopic(ctx, n, r.cfg.ReplicationFactor, map[string]*string{"cleanup.policy": &compact}, r.cfg.Topic)
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("creating changelog topic %s: %w", r.cfg.Topic, err)
			}
			if err == nil {
				r.log.Info("created the changelog topic", "topic", r.cfg.Topic, "partitions", n, "cleanup_policy", compact)
				r.partitions = make([]int32, n)
				for i := range r.partitions {
					r.partitions[i] = int32(i)
				}
				return nil
			}
			return errors.New("changelog topic created by another process; reading its partitions")
		}
		if d.Err != nil {
			return fmt.Errorf("listing changelog topic %s: %w", r.cfg.Topic, d.Err)
		}
		r.partitions = d.Partitions.Numbers()
		if len(d.Partitions) != len(src.Partitions) {
			r.log.Warn("the changelog topic's partition count differs from the user topic's; keys still go to one partition each", "changelog", r.cfg.Topic, "partitions", len(d.Partitions), "user_topic_partitions", len(src.Partitions))
		}
		return nil
	})
}

// position reads where the topic stopped: the highest outbox position in
// the header of the last committed record of any partition (the zero
// position if the topic is empty). Transactions commit whole pages in
// order, so every row up to it is in the topic and none after it.
func (r *Relay) position(ctx context.Context) (store.OutboxPosition, error) {
	last, err := r.conn.LastRecords(ctx, "changelog-tail", r.cfg.Topic, r.partitions)
	if err != nil {
		return store.OutboxPosition{}, fmt.Errorf("reading where the changelog stopped: %w", err)
	}
	var pos store.OutboxPosition
	for p, rec := range last {
		at, ok := PositionOf(rec)
		if !ok {
			r.log.Warn("the last record of a changelog partition has no outbox position; was it written by something else?", "topic", r.cfg.Topic, "partition", p, "offset", rec.Offset)
			continue
		}
		if pos.Less(at) {
			pos = at
		}
	}
	return pos, nil
}
