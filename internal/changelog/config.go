// Package changelog produces the joined profiles to a compacted Kafka topic,
// exactly once: the state transactions write each profile they change to an
// outbox in PostgreSQL (internal/store), and the Relay produces the outbox,
// in commit order, inside Kafka transactions, then deletes what it produced.
//
// One relay leads per schema (a PostgreSQL session lock); the others wait.
// A leader that stalls loses the lock when PostgreSQL ends its idle session,
// and its successor's first act is to initialise the shared transactional
// id, which aborts the stalled leader's open transaction and fences it at
// the broker. The successor then reads where the topic stopped (a header on
// the last record of each partition, read_committed) and goes on from
// there. docs/delivery-semantics.md ("The changelog") has the argument.
package changelog

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the relay.
type Config struct {
	// Topic is the changelog topic; empty: no changelog (an empty
	// --changelog-topic turns it off). Topic or EnrichedTopic is required.
	Topic string
	// EnrichedTopic is the as-of join's topic (store.EnrichTx), keyed by
	// the source event's "<topic>/<partition>/<offset>"; empty: none.
	EnrichedTopic string
	// ActivityTopic is the windowed organization activity's topic
	// (store.ActivityTx), keyed by "<organization>/<window start>"; empty:
	// none.
	ActivityTopic string
	// SourceTopic is the user topic: a created changelog topic gets as many
	// partitions. Required.
	SourceTopic string
	// TransactionalID is shared by every relay of one schema: that is what
	// fences a stalled one. Default "streamjoin.changelog.<Topic>".
	TransactionalID string
	// CreateTopic creates the topic, compacted, if it is missing.
	CreateTopic bool
	// ReplicationFactor of a created topic; -1 uses the broker default.
	ReplicationFactor int16
	// PageRows bounds the rows of one Kafka transaction, and so the relay's
	// memory, in whole outbox chunks (store.OutboxChunk profiles each; at
	// least one). Default 5000.
	PageRows int
	// PollInterval is how long the relay waits for a commit notification
	// before it looks at the outbox anyway. Default 1s.
	PollInterval time.Duration
	// StandbyInterval is how often a relay that does not lead tries to.
	// Default 2s.
	StandbyInterval time.Duration
	// IdleTimeout ends the leader's PostgreSQL session if it sends nothing
	// that long (a frozen process), freeing the lead. It must exceed
	// PollInterval. Default 15s.
	IdleTimeout time.Duration
	// TransactionTimeout is the broker's limit on one Kafka transaction.
	// Default 60s.
	TransactionTimeout time.Duration
	// RetryBackoffMax caps the wait between retries. Default 5s.
	RetryBackoffMax time.Duration
}

// Defaults.
const (
	DefaultTopic              = "user_profiles"
	DefaultEnrichedTopic      = "user_events_enriched"
	DefaultActivityTopic      = "org_activity"
	DefaultPageRows           = 5000
	DefaultPollInterval       = time.Second
	DefaultStandbyInterval    = 2 * time.Second
	DefaultIdleTimeout        = 15 * time.Second
	DefaultTransactionTimeout = time.Minute
	DefaultRetryBackoffMax    = 5 * time.Second
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.TransactionalID == "" {
		c.TransactionalID = "streamjoin.changelog." + c.Topic
		if c.Topic == "" {
			c.TransactionalID = "streamjoin.changelog." + c.topics()[0]
		}
	}
	if c.PageRows == 0 {
		c.PageRows = DefaultPageRows
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.StandbyInterval == 0 {
		c.StandbyInterval = DefaultStandbyInterval
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = DefaultTransactionTimeout
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = DefaultRetryBackoffMax
	}
	return c
}

// Validate reports the first bad setting, by its flag name.
func (c Config) Validate() error {
	switch {
	case len(c.topics()) == 0:
		return errors.New("changelog-topic, enriched-topic, activity-topic: one is required for a relay")
	case c.duplicateTopic() != "":
		return fmt.Errorf("changelog-topic, enriched-topic, activity-topic %q: must differ", c.duplicateTopic())
	case c.SourceTopic == "":
		return errors.New("user-topic: required by the changelog")
	case c.PageRows < 1:
		return fmt.Errorf("changelog-page-rows %d: must be at least 1", c.PageRows)
	case c.PollInterval <= 0:
		return fmt.Errorf("changelog-poll-interval %s: must be positive", c.PollInterval)
	case c.IdleTimeout <= 2*c.PollInterval:
		return fmt.Errorf("changelog-idle-timeout %s: must exceed twice the poll interval %s", c.IdleTimeout, c.PollInterval)
	case c.TransactionTimeout < time.Second:
		return fmt.Errorf("changelog-transaction-timeout %s: must be at least 1s", c.TransactionTimeout)
	}
	return nil
}
