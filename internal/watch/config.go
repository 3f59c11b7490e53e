// Package watch is `streamjoin watch`: it notices complete files in a
// directory or under an S3 prefix and produces their JSON values to a Kafka
// topic, exactly once for read_committed readers.
//
// Each file's records go out in Kafka transactions of a bounded size
// (ChunkRecords, ChunkBytes). Every transaction also writes the file's entry
// in a compacted manifest topic: its identity (name, size, and mtime or S3
// ETag) and how many of its records are in. On start a Watcher claims its
// transactional id (which fences a previous instance and aborts its open
// transaction), reads the manifest read_committed and resumes each file at
// the first record not yet committed. See docs/watch.md.
package watch

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Completeness rules for files in a directory (Config.Complete).
const (
	// CompleteSettle: a file is complete once its size and mtime have not
	// changed for Config.Settle. Works with writers that write in place.
	CompleteSettle = "settle"
	// CompleteRename: a file is complete as soon as it is listed. Writers
	// must write under a temporary suffix (Config.TempSuffixes) or elsewhere
	// and rename the file into the directory when it is whole.
	CompleteRename = "rename"
	// CompleteDone: a file is complete once a marker named <file>.done
	// exists beside it.
	CompleteDone = "done"
)

// Config is one watcher's settings. Exactly one of Dir and S3 is set; the
// other fields have defaults (DefaultConfig).
type Config struct {
	// Dir is the directory to watch. Complete files are moved to Dir/done
	// once all their records are committed, bad ones to Dir/failed.
	Dir string
	// S3 is the bucket and prefix to watch, s3://bucket/prefix/. Objects
	// are never moved: the manifest alone marks them done or failed.
	S3 string
	// S3Endpoint is the S3 service's host[:port]. Default s3.amazonaws.com.
	S3Endpoint string
	// S3Region is the bucket's region ("" lets the client find it).
	S3Region string
	// S3Insecure speaks plain HTTP to S3Endpoint.
	S3Insecure bool

	// Topic receives one record per JSON value. Required. The topic must
	// exist: watch does not create it.
	Topic string
	// KeyField is the top-level field whose value keys each record, as in
	// `streamjoin produce` ("": no key).
	KeyField string

	// Complete is the rule that says a file in Dir is whole: settle,
	// rename or done. For S3 an object is whole once listed (a PUT is
	// atomic), unless Complete is done, which waits for <key>.done there
	// too.
	Complete string
	// Settle is how long a file must stay unchanged under CompleteSettle.
	Settle time.Duration
	// RescanInterval is how often Dir is listed again even without a file
	// system event, so that nothing is missed (events lost, a restart).
	RescanInterval time.Duration
	// PollInterval is how often the S3 prefix is listed.
	PollInterval time.Duration
	// TempSuffixes are name endings of files still being written; they are
	// never taken. A .done marker and a .reason file are never taken either.
	TempSuffixes []string

	// ManifestTopic is the compacted topic recording each file's progress.
	// It is created (one partition, cleanup.policy=compact) if missing.
	ManifestTopic string
	// TransactionalID is this watcher's Kafka transactional id: one per
	// source, stable across restarts. Default "streamjoin-watch:" + the
	// source (the directory's absolute path, or the s3:// URL).
	TransactionalID string
	// ChunkRecords and ChunkBytes bound one transaction: it ends after this
	// many records or value bytes, whichever comes first.
	ChunkRecords int
	ChunkBytes   int
	// MaxRecordBytes is the largest value taken. A file with a larger one
	// fails whole (a broker would refuse it); it also bounds the memory a
	// single value can take.
	MaxRecordBytes int
	// CommitTimeout bounds one transaction: producing its records and
	// committing. A transaction that takes longer is retried from the
	// manifest.
	CommitTimeout time.Duration
	// RetryBackoffMax caps the wait between attempts after a failure.
	RetryBackoffMax time.Duration
	// ProgressInterval is how often a progress line is logged while
	// records flow (none while idle).
	ProgressInterval time.Duration
}

// DefaultConfig returns the defaults; Dir or S3 and Topic are still needed.
func DefaultConfig() Config {
	return Config{
		S3Endpoint:       "s3.amazonaws.com",
		Complete:         CompleteSettle,
		Settle:           2 * time.Second,
		RescanInterval:   10 * time.Second,
		PollInterval:     5 * time.Second,
		TempSuffixes:     []string{".tmp", ".part", ".partial"},
		ManifestTopic:    "streamjoin.files",
		ChunkRecords:     10_000,
		ChunkBytes:       4 << 20,
		MaxRecordBytes:   1 << 20,
		CommitTimeout:    30 * time.Second,
		RetryBackoffMax:  5 * time.Second,
		ProgressInterval: 10 * time.Second,
	}
}

// Validate reports every bad setting, one per line, each line starting with
// the setting's flag name.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.Dir == "" && c.S3 == "":
		bad("dir: one of --dir and --s3 is required")
	case c.Dir != "" && c.S3 != "":
		bad("dir: --dir and --s3 exclude each other")
	case c.S3 != "":
		if _, _, err := parseS3URL(c.S3); err != nil {
			bad("s3 %q: %v", c.S3, err)
		}
		if c.S3Endpoint == "" {
			bad("s3-endpoint: required with --s3")
		}
	}
	if c.Topic == "" {
		bad("topic: required")
	}
	switch c.Complete {
	case CompleteSettle, CompleteRename, CompleteDone:
	default:
		bad("complete %q: want settle, rename or done", c.Complete)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"settle", c.Settle}, {"rescan-interval", c.RescanInterval}, {"poll-interval", c.PollInterval},
		{"commit-timeout", c.CommitTimeout}, {"retry-backoff-max", c.RetryBackoffMax}, {"progress-interval", c.ProgressInterval},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad("%s %s: must be positive", p.name, p.d)
		}
	}
	if c.CommitTimeout > 0 && c.CommitTimeout < time.Second {
		bad("commit-timeout %s: must be at least 1s", c.CommitTimeout)
	}
	if c.ManifestTopic == "" {
		bad("manifest-topic: required")
	}
	if c.ManifestTopic != "" && c.ManifestTopic == c.Topic {
		bad("manifest-topic %q: must differ from --topic", c.ManifestTopic)
	}
	if c.ChunkRecords < 1 {
		bad("chunk-records %d: must be at least 1", c.ChunkRecords)
	}
	if c.ChunkBytes < 1 {
		bad("chunk-bytes %d: must be at least 1", c.ChunkBytes)
	}
	if c.MaxRecordBytes < 1 || c.MaxRecordBytes > 256<<20 {
		bad("max-record-bytes %d: must be between 1 and 256 MiB", c.MaxRecordBytes)
	}
	for _, s := range c.TempSuffixes {
		if s == "" {
			bad("temp-suffixes: an empty suffix would match every file")
		}
	}
	return errors.Join(errs...)
}

// source names what is watched, for the default transactional id and the
// manifest's entries: "dir:" + the directory, or the s3:// URL.
func (c Config) source() string {
	if c.S3 != "" {
		return c.S3
	}
	return "dir:" + c.Dir
}

// transactionalID is TransactionalID or its default.
func (c Config) transactionalID() string {
	if c.TransactionalID != "" {
		return c.TransactionalID
	}
	return "streamjoin-watch:" + c.source()
}

// parseS3URL splits s3://bucket/prefix into the bucket and the prefix.
func parseS3URL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", err
	}
	if u.Scheme != "s3" || u.Host == "" {
		return "", "", errors.New("want s3://bucket/prefix/")
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), nil
}
