package changelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// Outboxes is where the relay takes the lead; *store.Store implements it.
type Outboxes interface {
	LeadChangelog(ctx context.Context, idleTimeout time.Duration) (*store.Outbox, error)
}

// Relay produces the changelog outbox to the changelog topic. Run it in
// every process that writes state: one leads, the others stand by.
type Relay struct {
	cfg     Config
	conn    *kafka.Connector
	st      Outboxes
	log     *slog.Logger
	metrics *metrics

	partitions map[string][]int32 // each output topic's, read by prepareTopic
	dropOnce   sync.Once          // the warning for rows of an output that is off

	// beforeCommit and afterCommit, if set (by tests), run between a
	// transaction's last produce and its commit, and after the commit with
	// its result.
	beforeCommit func()
	afterCommit  func(error)
}

// New validates cfg and returns a Relay. reg, if not nil, receives its
// metrics (streamjoin_changelog_*).
func New(cfg Config, conn *kafka.Connector, st Outboxes, reg prometheus.Registerer, logger *slog.Logger) (*Relay, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newMetrics(reg)
	m.init(cfg.topics())
	return &Relay{cfg: cfg, conn: conn, st: st, log: logger, metrics: m}, nil
}

// Run prepares the topic, then leads the relay whenever it can, until ctx
// ends (it returns nil) or something fails that waiting cannot fix (it
// returns that). It blocks. A lost lead, an unreachable broker or
// PostgreSQL are waited out, logged once per change.
func (r *Relay) Run(ctx context.Context) error {
	if err := r.prepareTopic(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	policy := retry.Policy{Initial: r.cfg.StandbyInterval, Max: max(r.cfg.StandbyInterval, r.cfg.RetryBackoffMax)}
	standingBy := false
	for {
		err := retry.Do(ctx, policy, r.log, "relaying the changelog", func() error {
			err := r.lead(ctx, &standingBy)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, store.ErrNotLeader), permanent(err):
				return retry.Permanent(err)
			}
			return err
		})
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotLeader) {
			return err
		}
		if !standingBy {
			r.log.Info("another process relays the changelog; standing by", "topics", r.cfg.topics())
			standingBy = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.cfg.StandbyInterval):
		}
	}
}

// permanent reports whether err is one that waiting cannot fix: a
// PostgreSQL error that Classify calls permanent (a bug, a missing
// migration), or a refused authorization at the broker. A fenced producer
// is not: another relay leads, and this one stands by.
func permanent(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return store.Classify(err) == store.Permanent
	}
	return errors.Is(err, kerr.TransactionalIDAuthorizationFailed) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// lead takes the lead, fences the previous leader, finds where the topic
// stopped, and relays until something fails or ctx ends. Everything it
// opens it closes on return, and with the PostgreSQL session the lead.
func (r *Relay) lead(ctx context.Context, standingBy *bool) error {
	ob, err := r.st.LeadChangelog(ctx, r.cfg.IdleTimeout)
	if err != nil {
		return err
	}
	defer ob.Close()
	cl, err := r.conn.NewClient("changelog",
		kgo.TransactionalID(r.cfg.TransactionalID),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Initialising the producer id bumps the epoch: the previous leader's
	// open transaction is aborted and its next request is fenced. Only
	// then is the topic's end final enough to read.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return fmt.Errorf("initialising the changelog producer (fencing the previous leader): %w", err)
	}
	pos, err := r.position(ctx)
	if err != nil {
		return err
	}
	if err := ob.Delete(ctx, pos); err != nil {
		return err
	}
	*standingBy = false
	r.log.Info("leading the changelog relay", "topics", r.cfg.topics(), "transactional_id", r.cfg.TransactionalID, "from_commit", pos.Commit, "from_row", pos.Seq)
	r.metrics.leader.Set(1)
	defer r.metrics.leader.Set(0)
	p := newProgress(r.log)
	// Produced rows are deleted in one statement per deleteEvery or four
	// pages (or once the outbox is empty), not after every page: fewer
	// transactions, each with its own WAL flush, for the same rows, and
	// still a bounded number of rows per statement.
	deleted, lastDelete, undeleted := pos, time.Now(), 0
	flush := func() error {
		if deleted == pos {
			return nil
		}
		if err := ob.Delete(ctx, pos); err != nil {
			return err
		}
		deleted, lastDelete, undeleted = pos, time.Now(), 0
		return nil
	}
	for {
		rows, err := ob.Next(ctx, pos, max(1, r.cfg.PageRows/store.OutboxChunk))
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			p.idle()
			if err := flush(); err != nil {
				return err
			}
			if err := ob.Wait(ctx, r.cfg.PollInterval); err != nil {
				return err
			}
			continue
		}
		if err := r.produce(ctx, cl, rows); err != nil {
			return err
		}
		pos = rows[len(rows)-1].Pos
		r.metrics.observe(rows, time.Now(), r.cfg.topicOf)
		p.add(len(rows), pos)
		if undeleted += len(rows); undeleted >= 4*max(r.cfg.PageRows, store.OutboxChunk) || time.Since(lastDelete) >= deleteEvery {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// deleteEvery is how often a busy relay deletes what it has produced.
const deleteEvery = 500 * time.Millisecond

// produce produces rows in one Kafka transaction and commits it. On any
// failure it aborts what it can and returns the error; the caller gives up
// the lead, and the next leader starts from what the topic holds.
func (r *Relay) produce(ctx context.Context, cl *kgo.Client, rows []store.OutboxRow) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning a changelog transaction: %w", err)
	}
	abort := func(cause error) error {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := cl.AbortBufferedRecords(actx); err == nil {
			_ = cl.EndTransaction(actx, kgo.TryAbort) // the broker aborts it anyway when it times out
		}
		return cause
	}
	failed := make(chan error, 1)
	for i := range rows {
		rec, err := r.record(&rows[i])
		if err != nil {
			return abort(err)
		}
		if rec == nil {
			continue // an output that is off now (see record)
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return abort(fmt.Errorf("flushing the changelog transaction: %w", err))
	}
	select {
	case err := <-failed:
		return abort(fmt.Errorf("producing the changelog: %w", err))
	default:
	}
	if r.beforeCommit != nil {
		r.beforeCommit()
	}
	err := cl.EndTransaction(ctx, kgo.TryCommit)
	if r.afterCommit != nil {
		r.afterCommit(err)
	}
	if err != nil {
		return abort(fmt.Errorf("committing the changelog transaction: %w", err))
	}
	return nil
}
