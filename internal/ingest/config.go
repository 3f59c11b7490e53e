// Package ingest consumes the user and organization topics with franz-go and
// writes each poll to PostgreSQL as one exactly-once batch. Invalid records
// go to a dead-letter topic with their reason.
package ingest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
)

// Config configures the consumer; how to reach Kafka is the connector's
// (internal/kafka). Zero fields take the defaults below
// (WithDefaults); Validate names the first bad setting by its flag.
type Config struct {
	// Group is the Kafka consumer group. Default "streamjoin".
	Group string
	// InstanceID makes this member static (KIP-345): a process restarted
	// with the same id takes its predecessor's place and partitions at
	// once, without waiting out the session timeout, and without a
	// rebalance. Give each process its own stable id (the pod name of a
	// StatefulSet). A static member does not leave the group when it stops:
	// its partitions wait up to SessionTimeout for it to come back. Empty
	// (the default): a dynamic member, which leaves on a clean stop, and
	// whose replacement after a crash waits out the session timeout.
	InstanceID string
	// UserTopic and OrgTopic are the source topics. Defaults "user_events"
	// and "org_events".
	UserTopic string
	OrgTopic  string
	// DLQSuffix names each source's dead-letter topic. Default ".dlq".
	DLQSuffix string
	// CreateTopics creates missing source and dead-letter topics at start.
	CreateTopics bool
	// Partitions is the partition count of topics streamjoin creates.
	// Default 6. Dead-letter topics get as many as their source.
	Partitions int32
	// ReplicationFactor of created topics; -1 uses the broker default.
	ReplicationFactor int16
	// StartOffset is where a partition with no stored offset starts:
	// "earliest" (default) or "latest". It is also the reset offset.
	StartOffset string
	// MaxPollRecords bounds one batch. Default 10000.
	MaxPollRecords int
	// FetchMaxBytes bounds one fetch response, which bounds the memory
	// records waiting to be processed take. Default 8 MiB.
	FetchMaxBytes int
	// Writers is how many lanes commit batches in parallel, each its own
	// share of the partitions (partition mod Writers), one transaction at a
	// time and in order. Default 2.
	Writers int
	// MaxValueBytes rejects larger record values. Default 1 MiB.
	MaxValueBytes int
	// RetryBackoffMax caps the exponential backoff between retries of a
	// failed Postgres write or DLQ produce. Default 10s.
	RetryBackoffMax time.Duration
	// ShutdownTimeout bounds how long the batch in flight may take to
	// commit after shutdown begins. Default 30s.
	ShutdownTimeout time.Duration
	// SessionTimeout is how long the group waits for a silent member
	// before giving its partitions to others. Default 45s.
	SessionTimeout time.Duration
	// ProgressInterval is how often the consumer logs a progress line
	// (records, rate, dead letters) while records are committed; an idle
	// stream logs none. Default 10s.
	ProgressInterval time.Duration
	// RebalanceTimeout is how long the group waits, in a rebalance, for
	// every member to finish its batch and rejoin; a member that takes
	// longer is removed and its partitions move on (its late batch is then
	// fenced). Default 60s.
	RebalanceTimeout time.Duration
	// MaxOutOfOrderness is how far, in event time, an event may be behind
	// the greatest one of its partition: a partition's watermark is its
	// greatest event time minus this. Default 5s.
	MaxOutOfOrderness time.Duration
	// IdleTimeout: a partition that is caught up and has had no records
	// for this long stops holding its topic's watermark back, until it has
	// records again. Default 30s.
	IdleTimeout time.Duration
	// WatermarkInterval is how often the watermarks are advanced and idle
	// partitions marked. Default 1s.
	WatermarkInterval time.Duration
	// ReleaseEnriched: the store runs the as-of join (store.Config.Enriched),
	// and the watermark loop emits its pending events after each advance
	// (store.ReleaseEnriched). Set by the caller from the store's
	// configuration, not a setting of its own.
	ReleaseEnriched bool
	// FireWindows: the store counts the windowed organization activity
	// (store.Config.Activity), and the watermark loop fires its windows
	// after each advance (store.FireWindows). Set by the caller, as
	// ReleaseEnriched is.
	FireWindows bool
}

// Defaults.
const (
	DefaultGroup             = "streamjoin"
	DefaultUserTopic         = "user_events"
	DefaultOrgTopic          = "org_events"
	DefaultDLQSuffix         = ".dlq"
	DefaultPartitions        = 6
	DefaultMaxPollRecords    = 10000
	DefaultWriters           = 2
	DefaultFetchMaxBytes     = 8 << 20
	DefaultRetryBackoffMax   = 10 * time.Second
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultSessionTimeout    = 45 * time.Second
	DefaultProgressInterval  = 10 * time.Second
	DefaultMaxOutOfOrderness = 5 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultWatermarkInterval = time.Second
	// DefaultRebalanceTimeout is Kafka's own default.
	DefaultRebalanceTimeout = 60 * time.Second
)

// DefaultConfig returns the defaults, with topic creation on.
func DefaultConfig() Config {
	return Config{CreateTopics: true, ReplicationFactor: -1}.WithDefaults()
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	set := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	set(&c.Group, DefaultGroup)
	set(&c.UserTopic, DefaultUserTopic)
	set(&c.OrgTopic, DefaultOrgTopic)
	set(&c.DLQSuffix, DefaultDLQSuffix)
	set(&c.StartOffset, "earliest")
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = DefaultMaxPollRecords
	}
	if c.Writers == 0 {
		c.Writers = DefaultWriters
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = event.DefaultMaxValueBytes
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = DefaultRetryBackoffMax
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.MaxOutOfOrderness == 0 {
		c.MaxOutOfOrderness = DefaultMaxOutOfOrderness
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WatermarkInterval == 0 {
		c.WatermarkInterval = DefaultWatermarkInterval
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	for flag, topic := range map[string]string{"user-topic": c.UserTopic, "org-topic": c.OrgTopic} {
		if err := validTopic(topic); err != nil {
			return fmt.Errorf("%s %q: %w", flag, topic, err)
		}
	}
	if c.UserTopic == c.OrgTopic {
		return fmt.Errorf("user-topic and org-topic are both %q", c.UserTopic)
	}
	if c.DLQSuffix == "" || validTopic("x"+c.DLQSuffix) != nil {
		return fmt.Errorf("dlq-suffix %q: must be non-empty and make a valid topic name", c.DLQSuffix)
	}
	if c.Group == "" {
		return errors.New("group: must not be empty")
	}
	if c.InstanceID != "" {
		if err := validTopic(c.InstanceID); err != nil {
			return fmt.Errorf("instance-id %q: %w", c.InstanceID, err)
		}
	}
	if c.Partitions < 1 {
		return fmt.Errorf("partitions %d: must be at least 1", c.Partitions)
	}
	if c.ReplicationFactor < -1 || c.ReplicationFactor == 0 {
		return fmt.Errorf("replication-factor %d: must be -1 (broker default) or at least 1", c.ReplicationFactor)
	}
	if c.StartOffset != "earliest" && c.StartOffset != "latest" {
		return fmt.Errorf("start-offset %q: must be earliest or latest", c.StartOffset)
	}
	if c.MaxPollRecords < 1 {
		return fmt.Errorf("max-poll-records %d: must be at least 1", c.MaxPollRecords)
	}
	if c.FetchMaxBytes < 64<<10 || c.FetchMaxBytes > 1<<30 {
		return fmt.Errorf("fetch-max-bytes %d: must be between 64 KiB and 1 GiB", c.FetchMaxBytes)
	}
	if c.Writers < 1 || c.Writers > 64 {
		return fmt.Errorf("writers %d: must be between 1 and 64", c.Writers)
	}
	if c.MaxValueBytes < 1 {
		return fmt.Errorf("max-value-bytes %d: must be at least 1", c.MaxValueBytes)
	}
	if c.RetryBackoffMax <= 0 {
		return fmt.Errorf("retry-backoff-max %s: must be positive", c.RetryBackoffMax)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("shutdown-timeout %s: must be positive", c.ShutdownTimeout)
	}
	if c.SessionTimeout < time.Second {
		return fmt.Errorf("session-timeout %s: must be at least 1s", c.SessionTimeout)
	}
	if c.ProgressInterval < 100*time.Millisecond {
		return fmt.Errorf("log-progress-interval %s: must be at least 100ms", c.ProgressInterval)
	}
	if c.RebalanceTimeout < time.Second {
		return fmt.Errorf("rebalance-timeout %s: must be at least 1s", c.RebalanceTimeout)
	}
	if c.MaxOutOfOrderness < 0 {
		return fmt.Errorf("max-out-of-orderness %s: must not be negative", c.MaxOutOfOrderness)
	}
	if c.IdleTimeout < 100*time.Millisecond {
		return fmt.Errorf("idle-timeout %s: must be at least 100ms", c.IdleTimeout)
	}
	if c.WatermarkInterval < 10*time.Millisecond || c.WatermarkInterval > c.IdleTimeout {
		return fmt.Errorf("watermark-interval %s: must be between 10ms and idle-timeout %s", c.WatermarkInterval, c.IdleTimeout)
	}
	return nil
}

func validTopic(t string) error {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return errors.New("not a valid topic name")
	}
	if strings.IndexFunc(t, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0 {
		return errors.New("topic names use only letters, digits, '.', '_' and '-'")
	}
	return nil
}
