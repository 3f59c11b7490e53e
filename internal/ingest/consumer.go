package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// Writer is what the consumer needs from the store. *store.Store implements it.
type Writer interface {
	ClaimOffsets(ctx context.Context, tps []store.TopicPartition) (map[store.TopicPartition]store.Claim, error)
	LostPartitions(ctx context.Context, owned []store.OffsetAdvance) ([]store.TopicPartition, error)
	WriteState(ctx context.Context, b *store.Batch) error
	WriteLog(ctx context.Context, b *store.Batch) error
	EnsurePartitions(ctx context.Context, tps []store.TopicPartition) error
	MarkIdle(ctx context.Context, marks []store.IdleMark) ([]store.TopicPartition, error)
	AdvanceWatermarks(ctx context.Context, maxOutOfOrderness time.Duration) ([]store.Watermark, error)
	ReleaseEnriched(ctx context.Context, orgTopic string, limit int) (int, error)
	FireWindows(ctx context.Context, userTopic string, limit int) (int, error)
}

// Consumer is the ingest pipeline: one consumer group member that polls both
// topics and commits each poll to PostgreSQL together with the offsets it
// covers, split by partition among Config.Writers lanes (lanes.go), each
// committing its share in its own transaction. Offsets live
// in PostgreSQL; on assignment the consumer claims its partitions there
// (which fences out their previous owner) and resumes from the stored
// offsets, which makes the effect exactly-once without Kafka transactions.
// Batches commit in the lanes while the next ones are polled, decoded and
// dead-lettered.
//
// Create it with New and call Run once. Joined is safe to call from any
// goroutine.
type Consumer struct {
	cfg      Config
	conn     *kafka.Connector
	st       Writer
	log      *slog.Logger
	dec      *event.Decoder
	metrics  *Metrics
	progress progress
	behind   *lagTracker       // records behind per claimed partition (lag.go); called under mu
	recent   recentDeadLetters // the last dead letters committed (recent.go)

	joined atomic.Bool

	mu       sync.Mutex
	owned    map[store.TopicPartition]partState  // the partitions this member has claimed
	assigned map[store.TopicPartition]bool       // the partitions Kafka assigns this member
	reclaim  map[store.TopicPartition]time.Time  // fenced, yet still assigned: claim again (since when)
	prepared map[store.TopicPartition]preparedAt // where the newest batch submitted leaves a partition

	dlqProducers map[store.TopicPartition]dlqProducer // the polling goroutine's only (deadletter.go)
}

// New validates cfg and returns a Consumer that reaches Kafka through conn
// and PostgreSQL through st. metrics may be nil.
func New(cfg Config, conn *kafka.Connector, st Writer, metrics *Metrics, logger *slog.Logger) (*Consumer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	metrics.init(cfg.UserTopic, cfg.OrgTopic)
	return &Consumer{
		cfg:      cfg,
		conn:     conn,
		st:       st,
		log:      logger,
		dec:      event.NewDecoder(cfg.MaxValueBytes),
		metrics:  metrics,
		behind:   newLagTracker(metrics.lag),
		owned:    make(map[store.TopicPartition]partState),
		assigned: make(map[store.TopicPartition]bool),
		reclaim:  make(map[store.TopicPartition]time.Time),
		prepared: make(map[store.TopicPartition]preparedAt),

		dlqProducers: make(map[store.TopicPartition]dlqProducer),
	}, nil
}

// Joined reports whether the consumer is currently a member of its group with
// an assignment (possibly empty).
func (c *Consumer) Joined() bool { return c.joined.Load() }

// retryPolicy is how the consumer waits between attempts of anything that
// fails for want of Kafka or PostgreSQL.
func (c *Consumer) retryPolicy() retry.Policy {
	return retry.Policy{Max: c.cfg.RetryBackoffMax}
}

// DLQTopic returns the dead-letter topic of a source topic.
func (c *Consumer) DLQTopic(source string) string { return source + c.cfg.DLQSuffix }

// Run consumes until ctx is canceled. It waits for Kafka to be reachable,
// creates missing topics, joins the group and processes polls. On
// cancellation it stops polling, lets the batch in flight commit (bounded by
// ShutdownTimeout), leaves the group and closes its Kafka client. It returns
// nil after a clean shutdown.
func (c *Consumer) Run(ctx context.Context) error {
	// Work on a batch survives ctx for up to ShutdownTimeout, so that the
	// batch in flight can commit.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(c.cfg.ShutdownTimeout, cancelWork) })
	defer stopTimer()

	if err := c.prepareTopics(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cl, err := c.conn.NewClient("consumer", c.groupOpts()...)
	if err != nil {
		return err
	}
	defer c.closeProducers() // after the loop, the last to use them
	defer c.behind.reset()   // a member that stopped owns nothing
	defer func() {
		c.joined.Store(false)
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cl.LeaveGroupContext(lctx); err != nil {
			c.log.Warn("leaving consumer group", "err", err)
		}
		// Close waits for the group to be left, which in a stuck rebalance
		// can take up to the rebalance timeout; do not hold up the exit.
		closed := make(chan struct{})
		go func() { cl.Close(); close(closed) }()
		select {
		case <-closed:
			c.log.Info("kafka consumer closed")
		case <-time.After(5 * time.Second):
			c.log.Warn("kafka consumer did not close within 5s; leaving it behind")
		}
	}()
	// Runs until the loop ends; its last commit precedes leaving the group.
	lag := newLagCommitter(cl, c.log)
	lagCtx, stopLag := context.WithCancel(context.WithoutCancel(ctx))
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); lag.run(lagCtx) }()
	defer func() { stopLag(); <-lagDone }()
	// One line per ProgressInterval while records flow; the last one comes
	// after the lanes have closed (stop closes them before Run returns).
	progCtx, stopProgress := context.WithCancel(context.WithoutCancel(ctx))
	progDone := make(chan struct{})
	go func() { defer close(progDone); c.reportProgress(progCtx, c.cfg.ProgressInterval) }()
	defer func() { stopProgress(); <-progDone }()
	wmCtx, stopWatermarks := context.WithCancel(ctx)
	wmDone := make(chan struct{})
	go func() { defer close(wmDone); c.runWatermarks(wmCtx) }()
	defer func() { stopWatermarks(); <-wmDone }()
	c.log.Info("consuming", "brokers", c.conn.Brokers(), "group", c.cfg.Group, "topics", []string{c.cfg.UserTopic, c.cfg.OrgTopic})

	// Batches commit in the writers' lanes while the next ones are polled,
	// decoded and dead-lettered, so PostgreSQL and this process work at the
	// same time. Allowing a rebalance while batches commit is safe: a
	// successor's claim waits for a transaction's row locks, and a batch of
	// a partition claimed since is fenced.
	//
	// A commit that fails for good ends the loop at once, even while the
	// poll waits for records that may never come, and the work in flight
	// with it: the process is going down with that error, and whatever has
	// not committed is read again by the next owner.
	loop, endLoop := context.WithCancelCause(ctx)
	defer endLoop(nil)
	fail := func(err error) {
		endLoop(err)
		cancelWork()
	}
	ls := c.startLanes(work, lag, fail)
	stop := func(err error) error {
		cl.AllowRebalance()
		// The batches queued may finish; records polled after shutdown
		// began are not processed and will be read again.
		err = errors.Join(err, ls.close())
		// The loop ended by a failure of ours, not by ctx (whose own
		// cause the loop would share), whatever followed it.
		if cause := context.Cause(loop); cause != nil && !errors.Is(cause, context.Cause(ctx)) {
			return cause
		}
		if err != nil && work.Err() != nil {
			c.log.Warn("shutdown timeout: batches in flight abandoned; they will be read again", "err", err)
			return nil
		}
		return err
	}
	for {
		pollCtx, cancelPoll := c.pollContext(loop)
		fetches := cl.PollRecords(pollCtx, c.cfg.MaxPollRecords)
		cancelPoll()
		if fetches.IsClientClosed() || loop.Err() != nil {
			return stop(nil)
		}
		c.observeEnds(fetches)
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				c.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		if fetches.NumRecords() > 0 {
			next, err := c.prepare(work, cl, fetches)
			if err != nil {
				return stop(err)
			}
			if next != nil {
				c.recordPrepared(next.b)
				// Submitted under work, not loop: a batch whose dead
				// letters are acknowledged still commits after a stop,
				// within the shutdown timeout.
				if err := ls.submit(work, next); err != nil {
					return stop(nil) // a failure or the shutdown timeout ended it
				}
			}
		}
		if err := c.reclaimPending(work, cl); err != nil {
			return stop(err)
		}
		cl.AllowRebalance()
	}
}

// pollContext bounds the next poll by when the first partition marked for
// claiming again is due, so that an idle stream does not delay it.
func (c *Consumer) pollContext(ctx context.Context) (context.Context, context.CancelFunc) {
	c.mu.Lock()
	var due time.Time
	for _, since := range c.reclaim {
		if at := since.Add(c.cfg.SessionTimeout); due.IsZero() || at.Before(due) {
			due = at
		}
	}
	c.mu.Unlock()
	if due.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, due.Add(10*time.Millisecond))
}
