package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/watch"
)

func newWatchCmd() *cobra.Command {
	var (
		kc  kafka.Config
		cfg watch.Config
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Produce each complete file of a directory or S3 prefix to a topic, exactly once",
		Long: `watch notices complete files (JSON arrays or NDJSON) in a directory or under
an S3 prefix and produces one record per value, in Kafka transactions that
also record each file's progress in a compacted manifest topic. Killed at
any point and restarted, it resumes each file where its last transaction
committed: read_committed readers see every record exactly once. Done files
move to <dir>/done; files that are not JSON move whole to <dir>/failed with a
<name>.reason file, and none of their records is produced. On S3 nothing is
moved: the manifest says what is done. See docs/watch.md.`,
		Example: `  streamjoin watch --brokers 127.0.0.1:9092 --dir /data/incoming --topic user_events --key received_at
  streamjoin watch --brokers 127.0.0.1:9092 --s3 s3://bucket/prefix/ --s3-endpoint minio:9000 --topic org_events`,
	}
	fs := cmd.Flags()
	kafkaFlags(fs, &kc, []string{"127.0.0.1:9092"})
	watchFlags(fs, &cfg)
	validate := func() error {
		if err := cfg.Validate(); err != nil {
			return err
		}
		if cfg.Dir != "" {
			if st, err := os.Stat(cfg.Dir); err != nil {
				return fmt.Errorf("dir: %w", err)
			} else if !st.IsDir() {
				return fmt.Errorf("dir %s: not a directory", cfg.Dir)
			}
		}
		return kc.Validate()
	}
	withConfig(cmd, validate, func(cmd *cobra.Command, logger *slog.Logger) error {
		conn, err := kafka.New(kc, logger.With("component", "kafka"), nil)
		if err != nil {
			return err
		}
		w, err := watch.New(cfg, conn, logger.With("component", "watch"))
		if err != nil {
			return err
		}
		return w.Run(cmd.Context())
	})
	return cmd
}

func watchFlags(fs *pflag.FlagSet, c *watch.Config) {
	d := watch.DefaultConfig()
	fs.StringVar(&c.Dir, "dir", "", "directory to watch (or --s3)")
	fs.StringVar(&c.S3, "s3", "", "S3 bucket and prefix to watch, s3://bucket/prefix/ (or --dir); credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", d.S3Endpoint, "S3 service host[:port]")
	fs.StringVar(&c.S3Region, "s3-region", "", "S3 bucket region (default: asked of the service)")
	fs.BoolVar(&c.S3Insecure, "s3-insecure", false, "speak plain HTTP to --s3-endpoint")
	fs.StringVar(&c.Topic, "topic", "", "topic to produce to (required; must exist)")
	fs.StringVar(&c.KeyField, "key", "", "top-level field whose value becomes the record key (default: no key)")
	fs.StringVar(&c.Complete, "complete", d.Complete, "when a file is whole: settle (unchanged for --settle), rename (as soon as listed; write under a temp suffix, then rename) or done (a <name>.done marker exists)")
	fs.DurationVar(&c.Settle, "settle", d.Settle, "how long a file must stay unchanged under --complete=settle")
	fs.DurationVar(&c.RescanInterval, "rescan-interval", d.RescanInterval, "how often the directory is listed even without file system events")
	fs.DurationVar(&c.PollInterval, "poll-interval", d.PollInterval, "how often the S3 prefix is listed")
	fs.StringSliceVar(&c.TempSuffixes, "temp-suffixes", d.TempSuffixes, "name endings of files still being written, never taken")
	fs.StringVar(&c.ManifestTopic, "manifest-topic", d.ManifestTopic, "compacted topic recording each file's progress, written in the same transactions (created if missing)")
	fs.StringVar(&c.TransactionalID, "transactional-id", "", "Kafka transactional id, one per watched source and stable across restarts (default: streamjoin-watch:<source>)")
	fs.IntVar(&c.ChunkRecords, "chunk-records", d.ChunkRecords, "most records in one transaction")
	fs.IntVar(&c.ChunkBytes, "chunk-bytes", d.ChunkBytes, "most value bytes in one transaction")
	fs.IntVar(&c.MaxRecordBytes, "max-record-bytes", d.MaxRecordBytes, "largest value taken; a file with a larger one fails whole")
	fs.DurationVar(&c.CommitTimeout, "commit-timeout", d.CommitTimeout, "how long one transaction may take to produce and commit before it is retried (at least 1s)")
	fs.DurationVar(&c.RetryBackoffMax, "retry-backoff-max", d.RetryBackoffMax, "cap of the backoff between retries after a failure")
	fs.DurationVar(&c.ProgressInterval, "progress-interval", d.ProgressInterval, "how often to log a progress line while records flow (none while idle)")
}
