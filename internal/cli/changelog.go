package cli

import (
	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/changelog"
)

func changelogFlags(fs *pflag.FlagSet, c *changelog.Config) {
	fs.StringVar(&c.Topic, "changelog-topic", changelog.DefaultTopic, "compacted topic that receives every change of the joined profiles, exactly once, keyed by user id (empty: no changelog)")
	fs.StringVar(&c.TransactionalID, "changelog-transactional-id", "", "Kafka transactional id shared by every relay of one deployment; it fences a stalled relay (default streamjoin.changelog.<topic>)")
	fs.IntVar(&c.PageRows, "changelog-page-rows", changelog.DefaultPageRows, "most changelog records in one Kafka transaction")
	fs.DurationVar(&c.PollInterval, "changelog-poll-interval", changelog.DefaultPollInterval, "how often the changelog relay looks at the outbox when no commit wakes it")
	fs.DurationVar(&c.IdleTimeout, "changelog-idle-timeout", changelog.DefaultIdleTimeout, "PostgreSQL ends the relay's session after this long without a word (a frozen process), so another process can take over")
}
