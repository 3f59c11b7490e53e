package cli

import (
	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/store"
)

func rawLogFlags(fs *pflag.FlagSet, c *store.RawLogConfig) {
	d := store.RawLogConfig{}.WithDefaults()
	fs.DurationVar(&c.Retention, "raw-retention", 0, "drop the raw logs' daily partitions once all of a day is older than this, e.g. 720h (0: keep everything)")
	fs.IntVar(&c.Ahead, "raw-partitions-ahead", d.Ahead, "days of raw-log partitions created ahead of today")
}
