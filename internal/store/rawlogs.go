package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/streamjoin/streamjoin/internal/retry"
)

var sqlRawLogPartitions = query("raw_log_partitions")

// rawLogs are the partitioned raw logs (0007_partition_raw_logs.sql).
var rawLogs = []string{"user_events", "org_events"}

// outboxTable is the changelog outbox, partitioned by day too
// (0006_changelog.sql); its partitions go once empty and a day old.
const outboxTable = "changelog_outbox"

// RawLogConfig configures the raw logs' partitions.
type RawLogConfig struct {
	// Retention drops a day's partition once all of it is older than this
	// (by ingested_at). 0 keeps everything. Default 0.
	Retention time.Duration
	// Ahead is how many days of partitions exist beyond today. Default 3.
	Ahead int
	// Interval is how often the partitions are checked. Default 1h.
	Interval time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c RawLogConfig) WithDefaults() RawLogConfig {
	if c.Ahead == 0 {
		c.Ahead = 3
	}
	if c.Interval == 0 {
		c.Interval = time.Hour
	}
	return c
}

// Validate reports the first bad setting, by its flag name.
func (c RawLogConfig) Validate() error {
	switch {
	case c.Retention < 0:
		return fmt.Errorf("raw-retention %s: must not be negative (0 keeps everything)", c.Retention)
	case c.Retention > 0 && c.Retention < 24*time.Hour:
		return fmt.Errorf("raw-retention %s: must be at least 24h, a day's partition", c.Retention)
	case c.Ahead < 1:
		return fmt.Errorf("raw-partitions-ahead %d: must be at least 1", c.Ahead)
	case c.Interval <= 0:
		return errors.New("raw-maintenance-interval: must be positive")
	}
	return nil
}

// RawLogChanges are the partitions one maintenance pass created and dropped.
type RawLogChanges struct {
	Created, Dropped []string
}

// MaintainRawLogs makes sure each raw log, and the changelog outbox, has a
// partition for every day from today to Ahead days after it (UTC, at now).
// If Retention is set, it drops each raw-log partition whose every
// possible row is older than now minus Retention: a day's partition once
// its end is, the partition that holds the log from before partitioning
// once the day it ends is. A row inside the window is never dropped. An
// outbox partition goes once its day ended more than a day ago and it is
// empty (the relay deletes what it produced), checked under its lock, so
// that nothing unrelayed is ever dropped. DDL waits at most 5 s for its
// locks; a pass that times out is simply done again at the next interval.
func (s *Store) MaintainRawLogs(ctx context.Context, cfg RawLogConfig, now time.Time) (RawLogChanges, error) {
	cfg = cfg.WithDefaults()
	var ch RawLogChanges
	var timedOut []error
	for _, log := range []string{rawLogs[0], rawLogs[1], outboxTable} {
		err := s.maintainPartitions(ctx, cfg, log, now, &ch)
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == pgerrcode.LockNotAvailable:
			// Writers held this table past the lock timeout: go on with
			// the others, so that one busy log never leaves the outbox
			// without its partitions ahead.
			timedOut = append(timedOut, err)
		case err != nil:
			return ch, err
		}
	}
	return ch, errors.Join(timedOut...)
}

// maintainPartitions is MaintainRawLogs for one partitioned table.
func (s *Store) maintainPartitions(ctx context.Context, cfg RawLogConfig, log string, now time.Time, ch *RawLogChanges) error {
	today := now.UTC().Truncate(24 * time.Hour)
	cutoff := now.Add(-cfg.Retention)
	rows, err := s.pool.Query(ctx, sqlRawLogPartitions, s.cfg.Schema+"."+log)
	if err != nil {
		return fmt.Errorf("listing %s partitions: %w", log, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing %s partitions: %w", log, err)
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for i := 0; i <= cfg.Ahead; i++ {
		day := today.AddDate(0, 0, i)
		name := log + "_d" + day.Format("20060102")
		if have[name] || covered(names, log, day) {
			continue
		}
		ddl := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')",
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{log}.Sanitize(), day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339))
		if err := s.ddl(ctx, ddl); err != nil {
			return fmt.Errorf("creating partition %s: %w", name, err)
		}
		ch.Created = append(ch.Created, name)
	}
	if log == outboxTable {
		dropped, err := s.dropEmptyOutboxPartitions(ctx, names, now)
		ch.Dropped = append(ch.Dropped, dropped...)
		return err
	}
	if cfg.Retention == 0 {
		return nil
	}
	for _, n := range names {
		end, ok := partitionEnd(log, n)
		if !ok || end.After(cutoff) {
			continue
		}
		if err := s.ddl(ctx, "DROP TABLE "+pgx.Identifier{n}.Sanitize()); err != nil {
			return fmt.Errorf("dropping partition %s: %w", n, err)
		}
		ch.Dropped = append(ch.Dropped, n)
	}
	return nil
}

// dropEmptyOutboxPartitions drops the outbox partitions among names whose
// day ended more than a day before now and that are empty, each checked
// under its exclusive lock (which waits for any transaction still writing
// into it), and returns those it dropped.
func (s *Store) dropEmptyOutboxPartitions(ctx context.Context, names []string, now time.Time) ([]string, error) {
	var dropped []string
	for _, n := range names {
		end, ok := partitionEnd(outboxTable, n)
		if !ok || end.After(now.Add(-24*time.Hour)) {
			continue
		}
		gone := false
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
				return err
			}
			id := pgx.Identifier{n}.Sanitize()
			// The parent first, as writers and DROP take them: locking the
			// partition alone and then dropping it (which locks the parent)
			// could deadlock with a writer holding the parent.
			if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{outboxTable}.Sanitize()+", "+id+" IN ACCESS EXCLUSIVE MODE"); err != nil {
				return err
			}
			var left bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+id+")").Scan(&left); err != nil || left {
				return err // not relayed yet: kept
			}
			_, err := tx.Exec(ctx, "DROP TABLE "+id)
			gone = err == nil
			return err
		})
		if err != nil {
			return dropped, fmt.Errorf("dropping outbox partition %s: %w", n, err)
		}
		if gone {
			dropped = append(dropped, n)
		}
	}
	return dropped, nil
}

// ddl runs one DDL statement with a 5 s lock timeout.
func (s *Store) ddl(ctx context.Context, stmt string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, stmt)
		return err
	})
}

// partitionEnd reads the end of a partition's range from its name:
// <log>_d<YYYYMMDD> ends a day after that day, <log>_before_<YYYYMMDD> at
// that day.
func partitionEnd(log, name string) (time.Time, bool) {
	if day, ok := strings.CutPrefix(name, log+"_d"); ok {
		t, err := time.Parse("20060102", day)
		return t.AddDate(0, 0, 1), err == nil
	}
	if day, ok := strings.CutPrefix(name, log+"_before_"); ok {
		t, err := time.Parse("20060102", day)
		return t, err == nil
	}
	return time.Time{}, false
}

// covered reports whether the partition of the log from before
// partitioning covers day (it covers every day before its end).
func covered(names []string, log string, day time.Time) bool {
	for _, n := range names {
		if !strings.HasPrefix(n, log+"_before_") {
			continue
		}
		if end, ok := partitionEnd(log, n); ok && day.Before(end) {
			return true
		}
	}
	return false
}

// RunRawLogMaintenance runs MaintainRawLogs now and then every Interval
// until ctx ends (it returns nil). It blocks. Failures are logged once per
// change and retried; what a pass changed is logged.
func (s *Store) RunRawLogMaintenance(ctx context.Context, cfg RawLogConfig, logger *slog.Logger) error {
	cfg = cfg.WithDefaults()
	for {
		err := retry.Do(ctx, retry.Policy{Max: time.Minute}, logger, "maintaining raw log partitions", func() error {
			ch, err := s.MaintainRawLogs(ctx, cfg, time.Now())
			if len(ch.Created)+len(ch.Dropped) > 0 {
				logger.Info("raw log partitions", "created", ch.Created, "dropped", ch.Dropped, "retention", cfg.Retention)
			}
			var pgErr *pgconn.PgError
			switch {
			case errors.As(err, &pgErr) && pgErr.Code == pgerrcode.LockNotAvailable:
				// Writers held the table longer than the lock timeout: the
				// next pass tries again.
				logger.Warn("raw log partitions: a lock was not granted in time; trying again at the next pass", "err", err)
				return nil
			case err != nil && Classify(err) == Permanent:
				return retry.Permanent(err)
			}
			return err
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.Interval):
		}
	}
}
