package watch

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/retry"
)

// Watcher takes the complete files of one source and produces them. Create
// it with New; Run it once.
type Watcher struct {
	cfg   Config
	conn  *kafka.Connector
	log   *slog.Logger
	src   source
	stats stats
}

// New validates cfg and opens the source: for a directory it must exist;
// for S3 the client is built, but nothing is sent yet. Every Kafka client
// comes from conn. logger may be nil.
func New(cfg Config, conn *kafka.Connector, logger *slog.Logger) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cfg: cfg, conn: conn, log: logger}
	var err error
	if cfg.Dir != "" {
		if w.cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
			return nil, fmt.Errorf("dir: %w", err)
		}
		w.src, err = newDirSource(w.cfg, logger)
	} else {
		w.src, err = newS3Source(cfg)
	}
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Run watches until ctx ends, then returns nil once the transaction in
// flight (if any) has ended; it blocks until then. Kafka and source errors
// are retried (logged once per change of state), each time from what the
// manifest says is committed. It returns an error only when another watch
// claimed the same transactional id (it fenced this one). Run closes the
// source when it returns.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.src.close()
	policy := retry.Policy{Max: w.cfg.RetryBackoffMax}
	if err := retry.Do(ctx, policy, w.log, "creating the manifest topic", func() error {
		return ensureTopic(ctx, w.conn, w.cfg.ManifestTopic)
	}); err != nil {
		return w.stopped(ctx, err)
	}
	progressDone := make(chan struct{})
	progressCtx, stopProgress := context.WithCancel(ctx)
	go func() {
		defer close(progressDone)
		w.progress(progressCtx)
	}()
	defer func() {
		stopProgress()
		<-progressDone
	}()
	err := retry.Do(ctx, policy, w.log, "watching "+w.cfg.source(), func() error {
		err := w.session(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case fenced(err):
			return retry.Permanent(fmt.Errorf("fenced: another watch claimed transactional id %q: %w", w.cfg.transactionalID(), err))
		}
		return err
	})
	return w.stopped(ctx, err)
}

// stopped maps an error that is only ctx ending to nil.
func (w *Watcher) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// session runs one session until ctx ends (nil) or an error.
func (w *Watcher) session(ctx context.Context) error {
	s, err := w.startSession(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	w.log.Info("watching", "source", w.cfg.source(), "topic", w.cfg.Topic, "complete", w.cfg.Complete,
		"transactional_id", w.cfg.transactionalID(), "manifest_entries", len(s.manifest))
	for ctx.Err() == nil {
		files, recheck, err := w.src.list(ctx)
		if err != nil {
			return err
		}
		busy := false
		for _, f := range files {
			if ctx.Err() != nil {
				return nil
			}
			did, err := s.file(ctx, f)
			if err != nil {
				return err
			}
			busy = busy || did
		}
		if !busy { // after work, list again at once: files may have come meanwhile
			w.src.wait(ctx, recheck)
		}
	}
	return nil
}

// stats counts what was produced, for the progress line. Safe for
// concurrent use.
type stats struct {
	mu          sync.Mutex
	records     int64
	filesDone   int64
	filesFailed int64
	current     string
}

func (s *stats) committed(records int, name string) {
	s.mu.Lock()
	s.records += int64(records)
	s.current = name
	s.mu.Unlock()
}

func (s *stats) fileDone(int64) {
	s.mu.Lock()
	s.filesDone++
	s.mu.Unlock()
}

func (s *stats) fileFailed() {
	s.mu.Lock()
	s.filesFailed++
	s.mu.Unlock()
}

func (s *stats) snapshot() (records, done, failed int64, current string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records, s.filesDone, s.filesFailed, s.current
}

// progress logs a line every ProgressInterval in which records were
// committed or files finished, until ctx ends.
func (w *Watcher) progress(ctx context.Context) {
	t := time.NewTicker(w.cfg.ProgressInterval)
	defer t.Stop()
	var lastRecords, lastFiles int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			records, done, failed, current := w.stats.snapshot()
			if records == lastRecords && done+failed == lastFiles {
				last = now
				continue
			}
			rate := float64(records-lastRecords) / now.Sub(last).Seconds()
			w.log.Info("watch progress", "records", records, "records_per_second", int64(rate),
				"files_done", done, "files_failed", failed, "last_file", current)
			lastRecords, lastFiles, last = records, done+failed, now
		}
	}
}
