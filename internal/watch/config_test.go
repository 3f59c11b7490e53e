package watch

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := DefaultConfig()
	good.Dir, good.Topic = "/in", "user_events"
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string // the error's start; "" for none
	}{
		{"defaults with a dir and a topic", func(*Config) {}, ""},
		{"s3", func(c *Config) { c.Dir, c.S3 = "", "s3://b/p/" }, ""},
		{"no source", func(c *Config) { c.Dir = "" }, "dir: one of --dir and --s3"},
		{"both sources", func(c *Config) { c.S3 = "s3://b/" }, "dir: --dir and --s3 exclude"},
		{"bad s3 url", func(c *Config) { c.Dir, c.S3 = "", "http://b/p" }, "s3 \"http://b/p\""},
		{"s3 without endpoint", func(c *Config) { c.Dir, c.S3, c.S3Endpoint = "", "s3://b/", "" }, "s3-endpoint: required"},
		{"no topic", func(c *Config) { c.Topic = "" }, "topic: required"},
		{"bad rule", func(c *Config) { c.Complete = "soon" }, "complete \"soon\""},
		{"zero settle", func(c *Config) { c.Settle = 0 }, "settle 0s"},
		{"zero rescan", func(c *Config) { c.RescanInterval = 0 }, "rescan-interval 0s"},
		{"zero poll", func(c *Config) { c.PollInterval = 0 }, "poll-interval 0s"},
		{"short commit timeout", func(c *Config) { c.CommitTimeout = time.Millisecond }, "commit-timeout 1ms"},
		{"manifest is the topic", func(c *Config) { c.ManifestTopic = c.Topic }, "manifest-topic \"user_events\""},
		{"no manifest", func(c *Config) { c.ManifestTopic = "" }, "manifest-topic: required"},
		{"zero chunk", func(c *Config) { c.ChunkRecords = 0 }, "chunk-records 0"},
		{"zero chunk bytes", func(c *Config) { c.ChunkBytes = 0 }, "chunk-bytes 0"},
		{"zero max record", func(c *Config) { c.MaxRecordBytes = 0 }, "max-record-bytes 0"},
		{"huge max record", func(c *Config) { c.MaxRecordBytes = 1 << 30 }, "max-record-bytes 1073741824"},
		{"empty suffix", func(c *Config) { c.TempSuffixes = []string{""} }, "temp-suffixes:"},
		{"zero progress", func(c *Config) { c.ProgressInterval = 0 }, "progress-interval 0s"},
		{"zero backoff", func(c *Config) { c.RetryBackoffMax = 0 }, "retry-backoff-max 0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want it to start with %q", err, tt.want)
			}
		})
	}
}

func TestTransactionalIDDefault(t *testing.T) {
	t.Parallel()
	c := Config{Dir: "/data/in"}
	if got := c.transactionalID(); got != "streamjoin-watch:dir:/data/in" {
		t.Errorf("dir: %q", got)
	}
	c = Config{S3: "s3://b/p/"}
	if got := c.transactionalID(); got != "streamjoin-watch:s3://b/p/" {
		t.Errorf("s3: %q", got)
	}
	c.TransactionalID = "mine"
	if got := c.transactionalID(); got != "mine" {
		t.Errorf("set: %q", got)
	}
}
