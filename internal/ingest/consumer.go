package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
)

// Writer is what the consumer needs from the store. *store.Store implements it.
type Writer interface {
	ClaimOffsets(ctx context.Context, tps []store.TopicPartition) (map[store.TopicPartition]store.Claim, error)
	LostPartitions(ctx context.Context, owned []store.OffsetAdvance) ([]store.TopicPartition, error)
	WriteBatch(ctx context.Context, b *store.Batch) error
}

// Dead-letter headers.
const (
	HeaderError           = "streamjoin.error"
	HeaderErrorCode       = "streamjoin.error.code"
	HeaderSourceTopic     = "streamjoin.source.topic"
	HeaderSourcePartition = "streamjoin.source.partition"
	HeaderSourceOffset    = "streamjoin.source.offset"
)

// Consumer is the ingest pipeline: one consumer group member that polls both
// topics and commits each poll to PostgreSQL together with the offsets it
// covers, split by partition among Config.Writers transactions. Offsets live
// in PostgreSQL; on assignment the consumer claims its partitions there
// (which fences out their previous owner) and resumes from the stored
// offsets, which makes the effect exactly-once without Kafka transactions.
// One batch commits while the next is polled, decoded and dead-lettered.
//
// Create it with New and call Run once. Joined is safe to call from any
// goroutine.
type Consumer struct {
	cfg     Config
	st      Writer
	log     *slog.Logger
	dec     *event.Decoder
	metrics *Metrics

	joined atomic.Bool

	mu       sync.Mutex
	owned    map[store.TopicPartition]partState // the partitions this member has claimed
	assigned map[store.TopicPartition]bool      // the partitions Kafka assigns this member
	reclaim  map[store.TopicPartition]time.Time // fenced, yet still assigned: claim again (since when)
}

// dlqUnread marks a partition whose dead-letter tail this claim has not
// read yet. It is read just before the claim's first dead-letter produce,
// not at assignment, so that dead letters a replaced member still added
// after the claim are seen too.
const dlqUnread = -2

// partState is what a member knows of a partition it has claimed.
type partState struct {
	next *int64 // stored next offset, as this member last left it; nil: none
	gen  int64  // the generation of this member's claim
	// dlqDone is the highest source offset of this partition already in its
	// dead-letter partition (-1: none), or dlqUnread until this claim first
	// needs it. Dead letters at or below it are not produced again when a
	// predecessor's batch is reprocessed.
	dlqDone int64
}

// New validates cfg and returns a Consumer. metrics may be nil.
func New(cfg Config, st Writer, metrics *Metrics, logger *slog.Logger) (*Consumer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Consumer{
		cfg:      cfg,
		st:       st,
		log:      logger,
		dec:      event.NewDecoder(cfg.MaxValueBytes),
		metrics:  metrics,
		owned:    make(map[store.TopicPartition]partState),
		assigned: make(map[store.TopicPartition]bool),
		reclaim:  make(map[store.TopicPartition]time.Time),
	}, nil
}

// Joined reports whether the consumer is currently a member of its group with
// an assignment (possibly empty).
func (c *Consumer) Joined() bool { return c.joined.Load() }

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
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		return fmt.Errorf("creating kafka consumer: %w", err)
	}
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
	c.log.Info("consuming", "brokers", c.cfg.Brokers, "group", c.cfg.Group, "topics", []string{c.cfg.UserTopic, c.cfg.OrgTopic})

	// One batch commits while the next is polled, decoded and
	// dead-lettered, so PostgreSQL and this process work at the same time.
	// Allowing a rebalance while a batch commits is safe: a successor's
	// claim waits for that transaction's row locks, and a batch of a
	// partition claimed since is fenced.
	var inflight *pending
	wait := func() error {
		if inflight == nil {
			return nil
		}
		err := <-inflight.done
		inflight = nil
		return err
	}
	stop := func(err error) error {
		cl.AllowRebalance()
		if err != nil && work.Err() != nil {
			c.log.Warn("shutdown timeout: batch in flight abandoned; it will be read again", "err", err)
			return nil
		}
		return err
	}
	for {
		pollCtx, cancelPoll := c.pollContext(ctx)
		fetches := cl.PollRecords(pollCtx, c.cfg.MaxPollRecords)
		cancelPoll()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			// The batch in flight may finish; records polled after
			// shutdown began are not processed and will be read again.
			return stop(wait())
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				c.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		if fetches.NumRecords() > 0 {
			next, err := c.prepare(work, cl, fetches, inflight)
			if werr := wait(); werr != nil {
				return stop(werr)
			}
			if err != nil {
				return stop(err)
			}
			if next != nil {
				c.commit(work, next, lag)
				inflight = next
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

func (c *Consumer) startOffset() kgo.Offset {
	if c.cfg.StartOffset == "latest" {
		return kgo.NewOffset().AtEnd()
	}
	return kgo.NewOffset().AtStart()
}

// claim claims tps in PostgreSQL, retrying until ctx ends.
func (c *Consumer) claim(ctx context.Context, tps []store.TopicPartition) (map[store.TopicPartition]store.Claim, error) {
	var stored map[store.TopicPartition]store.Claim
	err := c.retry(ctx, "loading stored offsets", func() error {
		var err error
		stored, err = c.st.ClaimOffsets(ctx, tps)
		return err
	})
	return stored, err
}

func (c *Consumer) clientOpts() []kgo.Opt {
	start := c.startOffset()
	return []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ClientID(c.cfg.ClientID),
		kgo.WithLogger(kgoLogger{c.log}),
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.SessionTimeout(c.cfg.SessionTimeout),
		kgo.RebalanceTimeout(c.cfg.RebalanceTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, c.cfg.SessionTimeout/3)),
		kgo.ConsumeTopics(c.cfg.UserTopic, c.cfg.OrgTopic),
		// Eager rebalances: every member gives up everything and gets its
		// share back in one round. With the cooperative default, the chaos
		// tests saw a member leave mid-rebalance and three partitions stay
		// unassigned for minutes (kfake, franz-go v1.22.3). Eager costs a
		// short full stop per rebalance; claims make it safe either way.
		kgo.Balancers(kgo.StickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxBytes(int32(c.cfg.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(min(c.cfg.FetchMaxBytes, 1<<20))),
		kgo.ConsumeStartOffset(start),
		kgo.ConsumeResetOffset(start),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			c.joined.Store(true)
			c.mu.Lock()
			for topic, ps := range assigned {
				for _, p := range ps {
					c.assigned[store.TopicPartition{Topic: topic, Partition: p}] = true
				}
			}
			c.mu.Unlock()
			c.log.Info("partitions assigned", "assigned", assigned)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
			c.forget(revoked)
			c.log.Info("partitions revoked", "revoked", revoked)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			c.joined.Store(false)
			c.forget(lost)
			c.log.Warn("partitions lost", "lost", lost)
		}),
		// Dead letters go to the DLQ partition of the same number as their
		// source partition (modulo the DLQ's partition count), in order.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
}

// adjustOffsets claims newly assigned partitions in PostgreSQL, which fences
// out their previous owner, and replaces the offsets Kafka has committed with
// the ones stored there, the source of truth. It also learns how far each
// partition's dead letters already reached.
func (c *Consumer) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var tps []store.TopicPartition
	for topic, parts := range offsets {
		for p := range parts {
			tps = append(tps, store.TopicPartition{Topic: topic, Partition: p})
		}
	}
	if len(tps) == 0 {
		return offsets, nil
	}
	claims, err := c.claim(ctx, tps)
	if err != nil {
		return nil, err
	}
	start := c.startOffset()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		cl := claims[tp]
		c.owned[tp] = partState{next: cl.Next, gen: cl.Generation, dlqDone: dlqUnread}
		if cl.Next == nil {
			offsets[tp.Topic][tp.Partition] = start
		} else {
			offsets[tp.Topic][tp.Partition] = kgo.NewOffset().At(*cl.Next).WithEpoch(-1)
		}
	}
	c.log.Debug("claimed partitions; resuming from offsets stored in postgres", "offsets", fmtClaims(claims))
	return offsets, nil
}

// deadLetterTails reads the last record of the dead-letter partition of each
// source partition in tps and returns the source offset it came from (-1
// where the partition is empty). Dead letters of source partition p go to
// dead-letter partition p in offset order, so that record is the highest
// source offset already dead-lettered.
func (c *Consumer) deadLetterTails(ctx context.Context, tps []store.TopicPartition) (map[store.TopicPartition]int64, error) {
	out := make(map[store.TopicPartition]int64, len(tps))
	var topics []string
	seen := map[string]bool{}
	for _, tp := range tps {
		out[tp] = -1
		if t := c.DLQTopic(tp.Topic); !seen[t] {
			seen[t] = true
			topics = append(topics, t)
		}
	}
	// A client of its own: this runs inside the group client's callbacks.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.cfg.Brokers...), kgo.ClientID(c.cfg.ClientID), kgo.WithLogger(kgoLogger{c.log}))
	if err != nil {
		return nil, fmt.Errorf("creating kafka admin client: %w", err)
	}
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing dead-letter end offsets: %w", err)
	}
	want := map[string]map[int32]kgo.Offset{}
	last := map[store.TopicPartition]int64{} // dead-letter partition → its last offset
	for _, tp := range tps {
		dlq := store.TopicPartition{Topic: c.DLQTopic(tp.Topic), Partition: tp.Partition}
		e, ok := ends.Lookup(dlq.Topic, dlq.Partition)
		if !ok {
			return nil, fmt.Errorf("dead-letter partition %s does not exist", dlq)
		}
		if e.Err != nil {
			return nil, fmt.Errorf("listing end offset of %s: %w", dlq, e.Err)
		}
		if e.Offset <= 0 {
			continue
		}
		if want[dlq.Topic] == nil {
			want[dlq.Topic] = map[int32]kgo.Offset{}
		}
		want[dlq.Topic][dlq.Partition] = kgo.NewOffset().At(e.Offset - 1)
		last[dlq] = e.Offset - 1
	}
	if len(want) == 0 {
		return out, nil
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(c.cfg.Brokers...), kgo.ClientID(c.cfg.ClientID), kgo.WithLogger(kgoLogger{c.log}), kgo.ConsumePartitions(want))
	if err != nil {
		return nil, fmt.Errorf("creating dead-letter reader: %w", err)
	}
	defer rd.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(last) > 0 {
		fs := rd.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the last dead letters (%d partitions left): %w", len(last), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			dlq := store.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			if off, ok := last[dlq]; !ok || r.Offset != off {
				return
			}
			delete(last, dlq)
			srcTopic := headerValue(r, HeaderSourceTopic)
			srcPart, err1 := strconv.ParseInt(headerValue(r, HeaderSourcePartition), 10, 32)
			srcOff, err2 := strconv.ParseInt(headerValue(r, HeaderSourceOffset), 10, 64)
			src := store.TopicPartition{Topic: srcTopic, Partition: int32(srcPart)}
			if _, mine := out[src]; err1 != nil || err2 != nil || !mine || src.Partition != r.Partition {
				c.log.Warn("the last record of a dead-letter partition was not written by streamjoin for its source partition; dead letters of that partition may be produced again", "dlq", dlq, "offset", r.Offset)
				return
			}
			out[src] = srcOff
		})
	}
	return out, nil
}

func (c *Consumer) forget(parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			tp := store.TopicPartition{Topic: topic, Partition: p}
			delete(c.owned, tp)
			delete(c.assigned, tp)
			delete(c.reclaim, tp)
		}
	}
}

// disown drops partitions that another member has claimed since this one
// did. Their buffered records are skipped from now on. Usually Kafka has
// moved them and revokes them at the next rebalance. If Kafka still assigns
// them here, the other claim came from a member that was paused in the
// middle of claiming and has been replaced since; they are marked to be
// claimed again (reclaimPending), or they would stall.
func (c *Consumer) disown(tps []store.TopicPartition, gens map[store.TopicPartition]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if st, ok := c.owned[tp]; ok && st.gen == gens[tp] {
			delete(c.owned, tp)
			if c.assigned[tp] {
				c.reclaim[tp] = time.Now()
			}
		}
	}
}

// reclaimPending claims again the partitions disown marked at least a
// session timeout ago, and rewinds their fetch position to the stored
// offset. Waiting a session timeout first lets a replaced member learn from
// Kafka that it was replaced, so that the two do not take the partition from
// each other in turn. Call it from the polling goroutine before
// AllowRebalance, as kgo requires for SetOffsets.
func (c *Consumer) reclaimPending(ctx context.Context, cl *kgo.Client) error {
	c.mu.Lock()
	var tps []store.TopicPartition
	for tp, since := range c.reclaim {
		if time.Since(since) >= c.cfg.SessionTimeout {
			tps = append(tps, tp)
			delete(c.reclaim, tp)
		}
	}
	c.mu.Unlock()
	if len(tps) == 0 {
		return nil
	}
	claims, err := c.claim(ctx, tps)
	if err != nil {
		return err
	}
	seek := make(map[string]map[int32]kgo.EpochOffset)
	c.mu.Lock()
	for _, tp := range tps {
		claim := claims[tp]
		if !c.assigned[tp] {
			continue // revoked meanwhile
		}
		c.owned[tp] = partState{next: claim.Next, gen: claim.Generation, dlqDone: dlqUnread}
		next := int64(0) // nothing committed: from the start (a reset if it is gone)
		if claim.Next != nil {
			next = *claim.Next
		}
		if seek[tp.Topic] == nil {
			seek[tp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		seek[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: next}
	}
	c.mu.Unlock()
	cl.SetOffsets(seek)
	c.log.Warn("claimed again partitions that a replaced member had claimed while Kafka still assigns them here", "partitions", tps)
	return nil
}

// pending is one poll on its way to PostgreSQL: decoded, its dead letters
// acknowledged, and its transactions running or done.
type pending struct {
	b    *store.Batch // the commit's goroutine owns it once commit starts
	gens map[store.TopicPartition]int64
	dead []*kgo.Record
	// next is where the batch leaves its partitions, fixed before the
	// commit starts, for preparing the batch after it.
	next    map[store.TopicPartition]int64
	started time.Time
	done    chan error // the commit's result, once
}

// prepare turns one poll into a batch: it decodes the records and produces
// the dead letters, acknowledged, before any transaction can move the offset
// past them; those a crashed predecessor already produced are not produced
// again. expect gives the next offset of partitions whose previous batch is
// still being committed. It returns nil when nothing is left to commit, and
// an error only when ctx ends first.
func (c *Consumer) prepare(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches, inflight *pending) (*pending, error) {
	started := time.Now()
	b := &store.Batch{UserTopic: c.cfg.UserTopic, OrgTopic: c.cfg.OrgTopic}
	var dead []*kgo.Record
	last := make(map[store.TopicPartition]int64)
	var redundant int // dead letters already in the DLQ

	c.mu.Lock()
	owned := make(map[store.TopicPartition]partState, len(c.owned))
	for tp, st := range c.owned {
		// Where the batch in flight leaves the partition, unless the
		// partition was claimed again since it was prepared.
		if next, ok := inflight.nextFor(tp, st.gen); ok {
			st.next = &next
		}
		owned[tp] = st
	}
	c.mu.Unlock()

	fetches.EachRecord(func(r *kgo.Record) {
		tp := store.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		st, ok := owned[tp]
		if !ok || (st.next != nil && r.Offset < *st.next) {
			// Not ours any more, or already committed: skip.
			c.metrics.records.WithLabelValues(r.Topic, "skipped").Inc()
			return
		}
		last[tp] = r.Offset
		pos := event.Position{Partition: r.Partition, Offset: r.Offset}
		var err error
		switch r.Topic {
		case c.cfg.UserTopic:
			var u event.User
			if u, err = c.dec.User(r.Value, pos); err == nil {
				u.LogTime = r.Timestamp
				b.Users = append(b.Users, u)
			}
		case c.cfg.OrgTopic:
			var o event.Org
			if o, err = c.dec.Org(r.Value, pos); err == nil {
				o.LogTime = r.Timestamp
				b.Orgs = append(b.Orgs, o)
			}
		}
		if err != nil {
			if r.Offset <= st.dlqDone {
				redundant++
				return
			}
			dead = append(dead, c.deadLetter(r, err))
		}
	})
	var unread []store.TopicPartition
	for _, d := range dead {
		if tp := deadLetterSource(d).TopicPartition; owned[tp].dlqDone == dlqUnread && !slices.Contains(unread, tp) {
			unread = append(unread, tp)
		}
	}
	if len(last) == 0 {
		return nil, nil
	}
	gens := make(map[store.TopicPartition]int64, len(last))
	for tp, off := range last {
		st := owned[tp]
		gens[tp] = st.gen
		b.Offsets = append(b.Offsets, store.OffsetAdvance{Topic: tp.Topic, Partition: tp.Partition, Generation: st.gen, From: st.next, To: off + 1})
	}
	if redundant > 0 {
		c.log.Info("dead letters already produced before a restart were not produced again", "count", redundant)
	}

	if len(dead) > 0 {
		var err error
		if len(unread) > 0 {
			if dead, err = c.dropProduced(ctx, dead, unread, gens); err != nil {
				return nil, err
			}
		}
		// A member that lost its partitions must not add their dead letters
		// after its successor read the DLQ's tail: check the claims right
		// before each produce attempt, and drop what was lost.
		owned := func(recs []*kgo.Record) ([]*kgo.Record, error) {
			var lost []store.TopicPartition
			err := c.retry(ctx, "checking partition ownership", func() error {
				var err error
				lost, err = c.st.LostPartitions(ctx, b.Offsets)
				return err
			})
			if err != nil || len(lost) == 0 {
				return recs, err
			}
			c.log.Warn("partitions claimed by another member; dropping them from the batch", "partitions", lost)
			c.disown(lost, gens)
			dropPartitions(b, lost)
			dead = dropDeadLetters(dead, lost)
			return dropDeadLetters(recs, lost), nil
		}
		if err := c.produceDeadLetters(ctx, cl, dead, owned); err != nil {
			return nil, err
		}
		if len(b.Offsets) == 0 {
			return nil, nil
		}
		c.mu.Lock()
		for _, d := range dead {
			src := deadLetterSource(d)
			if st, ok := c.owned[src.TopicPartition]; ok && st.gen == gens[src.TopicPartition] {
				st.dlqDone = max(st.dlqDone, src.offset)
				c.owned[src.TopicPartition] = st
			}
		}
		c.mu.Unlock()
	}
	return &pending{b: b, gens: gens, dead: dead, next: nextOffsets(b), started: started, done: make(chan error, 1)}, nil
}

// dropProduced reads the dead-letter tails of the partitions in unread,
// records them, and returns dead without the dead letters already there: a
// crashed or replaced predecessor produced them.
func (c *Consumer) dropProduced(ctx context.Context, dead []*kgo.Record, unread []store.TopicPartition, gens map[store.TopicPartition]int64) ([]*kgo.Record, error) {
	var done map[store.TopicPartition]int64
	err := c.retry(ctx, "reading the last dead letters", func() error {
		var err error
		done, err = c.deadLetterTails(ctx, unread)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	for _, tp := range unread {
		if st, ok := c.owned[tp]; ok && st.gen == gens[tp] && st.dlqDone == dlqUnread {
			st.dlqDone = done[tp]
			c.owned[tp] = st
		}
	}
	c.mu.Unlock()
	kept := dead[:0]
	redundant := 0
	for _, d := range dead {
		src := deadLetterSource(d)
		if last, ok := done[src.TopicPartition]; ok && src.offset <= last {
			redundant++
			continue
		}
		kept = append(kept, d)
	}
	if redundant > 0 {
		c.log.Info("dead letters already produced by a previous owner were not produced again", "count", redundant)
	}
	return kept, nil
}

// commit writes p in the background and, once it committed, records it
// (finish) at once, even if no further poll comes; the result arrives on
// p.done.
func (c *Consumer) commit(ctx context.Context, p *pending, lag *lagCommitter) {
	go func() {
		err := c.writeParallel(ctx, p.b, p.gens)
		if err == nil {
			c.finish(p, lag)
		}
		p.done <- err
	}()
}

// nextFor returns where p leaves tp, if p is not nil and was prepared under
// generation gen.
func (p *pending) nextFor(tp store.TopicPartition, gen int64) (int64, bool) {
	if p == nil || p.gens[tp] != gen {
		return 0, false
	}
	next, ok := p.next[tp]
	return next, ok
}

// nextOffsets returns the offsets b leaves its partitions at.
func nextOffsets(b *store.Batch) map[store.TopicPartition]int64 {
	m := make(map[store.TopicPartition]int64, len(b.Offsets))
	for _, a := range b.Offsets {
		m[store.TopicPartition{Topic: a.Topic, Partition: a.Partition}] = a.To
	}
	return m
}

// finish records what p committed: the new stored offsets, the Kafka copy
// for lag tools, and the metrics.
func (c *Consumer) finish(p *pending, lag *lagCommitter) {
	b := p.b
	c.mu.Lock()
	commit := make(map[string]map[int32]kgo.EpochOffset)
	for _, a := range b.Offsets {
		tp := store.TopicPartition{Topic: a.Topic, Partition: a.Partition}
		if st, ok := c.owned[tp]; ok && st.gen == a.Generation {
			to := a.To
			st.next = &to
			c.owned[tp] = st
		}
		if commit[a.Topic] == nil {
			commit[a.Topic] = make(map[int32]kgo.EpochOffset)
		}
		commit[a.Topic][a.Partition] = kgo.EpochOffset{Epoch: -1, Offset: a.To}
	}
	c.mu.Unlock()
	lag.add(commit)
	// Count only what committed; a fenced partition's records were dropped.
	c.metrics.records.WithLabelValues(c.cfg.UserTopic, "valid").Add(float64(len(b.Users)))
	c.metrics.records.WithLabelValues(c.cfg.OrgTopic, "valid").Add(float64(len(b.Orgs)))
	committed := make(map[store.TopicPartition]bool, len(b.Offsets))
	for _, a := range b.Offsets {
		committed[store.TopicPartition{Topic: a.Topic, Partition: a.Partition}] = true
	}
	for _, d := range p.dead {
		if src := deadLetterSource(d); committed[src.TopicPartition] {
			c.metrics.records.WithLabelValues(src.Topic, "dead_letter").Inc()
			c.metrics.deadLetters.WithLabelValues(src.Topic, headerValue(d, HeaderErrorCode)).Inc()
		}
	}
	c.metrics.batches.Inc()
	c.metrics.batchSeconds.Observe(time.Since(p.started).Seconds())
	c.log.Debug("batch committed", "users", len(b.Users), "orgs", len(b.Orgs), "dead_letters", len(p.dead), "took", time.Since(p.started))
}

// writeParallel splits b by partition among the configured writers, each
// committing its share in its own transaction, and waits for all of them.
// Partitions never share a writer's transaction with another writer's, so
// their offset rows never conflict; rows of one user arriving on several
// partitions stay right because every upsert compares event times, and
// sorted upserts keep concurrent writers from deadlocking. On return, b
// holds what was committed (fenced partitions removed).
func (c *Consumer) writeParallel(ctx context.Context, b *store.Batch, gens map[store.TopicPartition]int64) error {
	subs := b.Split(c.cfg.Writers)
	if len(subs) == 1 {
		return c.write(ctx, b, gens)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(subs))
	for i, sub := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.write(ctx, sub, gens)
		}()
	}
	wg.Wait()
	*b = store.Batch{UserTopic: b.UserTopic, OrgTopic: b.OrgTopic}
	for _, sub := range subs {
		b.Users = append(b.Users, sub.Users...)
		b.Orgs = append(b.Orgs, sub.Orgs...)
		b.Offsets = append(b.Offsets, sub.Offsets...)
	}
	return errors.Join(errs...)
}

// write commits b, retrying conflicts at once and outages with backoff. When
// PostgreSQL fences some partitions (another member claimed them), their
// records are dropped from the batch, this member stops processing them, and
// the rest is written.
func (c *Consumer) write(ctx context.Context, b *store.Batch, gens map[store.TopicPartition]int64) error {
	for attempt := 0; ; attempt++ {
		err := c.st.WriteBatch(ctx, b)
		if err == nil {
			return nil
		}
		class := store.Classify(err)
		c.metrics.writeErrors.WithLabelValues(class.String()).Inc()
		switch class {
		case store.Fenced:
			var fe *store.FencedError
			errors.As(err, &fe)
			c.log.Warn("batch fenced: another member claimed these partitions; dropping them from the batch", "partitions", fe.Partitions)
			c.disown(fe.Partitions, gens)
			dropPartitions(b, fe.Partitions)
			if len(b.Offsets) == 0 {
				return nil
			}
			attempt = -1
			continue
		case store.Conflict:
			c.log.Debug("retrying batch after serialization failure or deadlock", "err", err)
			continue
		}
		if ctx.Err() != nil {
			return fmt.Errorf("writing batch: %w", ctx.Err())
		}
		d := backoff(attempt, c.cfg.RetryBackoffMax)
		c.log.Error("writing batch to postgres failed; retrying", "class", class, "attempt", attempt+1, "retry_in", d, "err", err)
		if !sleep(ctx, d) {
			return fmt.Errorf("writing batch: %w", ctx.Err())
		}
	}
}

func dropPartitions(b *store.Batch, tps []store.TopicPartition) {
	gone := make(map[store.TopicPartition]bool, len(tps))
	for _, tp := range tps {
		gone[tp] = true
	}
	users := b.Users[:0]
	for _, u := range b.Users {
		if !gone[store.TopicPartition{Topic: b.UserTopic, Partition: u.Pos.Partition}] {
			users = append(users, u)
		}
	}
	b.Users = users
	orgs := b.Orgs[:0]
	for _, o := range b.Orgs {
		if !gone[store.TopicPartition{Topic: b.OrgTopic, Partition: o.Pos.Partition}] {
			orgs = append(orgs, o)
		}
	}
	b.Orgs = orgs
	offs := b.Offsets[:0]
	for _, a := range b.Offsets {
		if !gone[store.TopicPartition{Topic: a.Topic, Partition: a.Partition}] {
			offs = append(offs, a)
		}
	}
	b.Offsets = offs
}

func dropDeadLetters(dead []*kgo.Record, tps []store.TopicPartition) []*kgo.Record {
	gone := make(map[store.TopicPartition]bool, len(tps))
	for _, tp := range tps {
		gone[tp] = true
	}
	// A new slice: callers filter slices that share a backing array.
	kept := make([]*kgo.Record, 0, len(dead))
	for _, d := range dead {
		if !gone[deadLetterSource(d).TopicPartition] {
			kept = append(kept, d)
		}
	}
	return kept
}

type sourcePosition struct {
	store.TopicPartition
	offset int64
}

// deadLetterSource reads a dead letter's source coordinates from the headers
// deadLetter wrote.
func deadLetterSource(d *kgo.Record) sourcePosition {
	p, _ := strconv.ParseInt(headerValue(d, HeaderSourcePartition), 10, 32)
	off, _ := strconv.ParseInt(headerValue(d, HeaderSourceOffset), 10, 64)
	return sourcePosition{store.TopicPartition{Topic: headerValue(d, HeaderSourceTopic), Partition: int32(p)}, off}
}

// deadLetter builds the DLQ record for r: same key, value and headers, plus
// the reason and the source coordinates.
func (c *Consumer) deadLetter(r *kgo.Record, cause error) *kgo.Record {
	code := "unknown"
	var ee *event.Error
	if errors.As(cause, &ee) {
		code = string(ee.Code)
	}
	c.log.Debug("dead letter", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", cause)
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+5)
	headers = append(headers, r.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: HeaderErrorCode, Value: []byte(code)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	return &kgo.Record{
		Topic:     c.DLQTopic(r.Topic),
		Partition: r.Partition,
		Key:       r.Key,
		Value:     r.Value,
		Headers:   headers,
		Timestamp: r.Timestamp,
	}
}

func headerValue(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

// produceDeadLetters produces recs and waits for every acknowledgement,
// retrying failures with backoff until ctx ends. Only then may the offsets
// move past them. recs are in offset order within each partition; after a
// failure, a partition's records are produced again from its first failed
// one, so that the last record of every dead-letter partition is always the
// highest source offset it holds. Before each attempt, owned returns the
// records still to produce whose partitions this member still owns.
func (c *Consumer) produceDeadLetters(ctx context.Context, cl *kgo.Client, recs []*kgo.Record, owned func([]*kgo.Record) ([]*kgo.Record, error)) error {
	pending := recs
	for attempt := 0; ; attempt++ {
		var err error
		if pending, err = owned(pending); err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		results := cl.ProduceSync(ctx, pending...)
		failedFrom := map[store.TopicPartition]int{} // partition → index of its first failure
		var firstErr error
		for i, res := range results {
			if res.Err == nil {
				continue
			}
			tp := store.TopicPartition{Topic: res.Record.Topic, Partition: res.Record.Partition}
			if _, ok := failedFrom[tp]; !ok {
				failedFrom[tp] = i
			}
			if firstErr == nil {
				firstErr = res.Err
			}
		}
		if len(failedFrom) == 0 {
			return nil
		}
		var again []*kgo.Record
		for i, res := range results {
			tp := store.TopicPartition{Topic: res.Record.Topic, Partition: res.Record.Partition}
			if from, ok := failedFrom[tp]; ok && i >= from {
				again = append(again, res.Record)
			}
		}
		c.metrics.writeErrors.WithLabelValues("dead_letter_produce").Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("producing dead letters: %w", ctx.Err())
		}
		d := backoff(attempt, c.cfg.RetryBackoffMax)
		c.log.Error("producing dead letters failed; offsets stay put until they are acknowledged", "failed", len(again), "retry_in", d, "err", firstErr)
		if !sleep(ctx, d) {
			return fmt.Errorf("producing dead letters: %w", ctx.Err())
		}
		pending = again
	}
}

// prepareTopics waits for the brokers, creates missing topics if configured
// to, and checks that every source partition has a dead-letter partition of
// the same number.
func (c *Consumer) prepareTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.cfg.Brokers...), kgo.ClientID(c.cfg.ClientID), kgo.WithLogger(kgoLogger{c.log}))
	if err != nil {
		return fmt.Errorf("creating kafka admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	sources := []string{c.cfg.UserTopic, c.cfg.OrgTopic}
	return c.retry(ctx, "preparing kafka topics", func() error {
		if c.cfg.CreateTopics {
			if err := createTopics(ctx, adm, c.cfg.Partitions, c.cfg.ReplicationFactor, sources...); err != nil {
				return err
			}
		}
		details, err := adm.ListTopics(ctx, sources...)
		if err != nil {
			return fmt.Errorf("listing topics: %w", err)
		}
		for _, topic := range sources {
			d, ok := details[topic]
			if !ok || d.Err != nil {
				return fmt.Errorf("source topic %s does not exist (create-topics is off): %v", topic, d.Err)
			}
			dlq := c.DLQTopic(topic)
			if c.cfg.CreateTopics {
				if err := createTopics(ctx, adm, int32(len(d.Partitions)), c.cfg.ReplicationFactor, dlq); err != nil {
					return err
				}
			}
			dd, err := adm.ListTopics(ctx, dlq)
			if err != nil {
				return fmt.Errorf("listing dead-letter topics: %w", err)
			}
			dl, ok := dd[dlq]
			if !ok || dl.Err != nil || len(dl.Partitions) == 0 {
				return fmt.Errorf("dead-letter topic %s does not exist (create-topics is off): %v", dlq, dl.Err)
			}
			if len(dl.Partitions) < len(d.Partitions) {
				return permanent(fmt.Errorf("dead-letter topic %s has %d partitions, fewer than the %d of %s: exactly-once dead letters need one for each source partition; add partitions to it", dlq, len(dl.Partitions), len(d.Partitions), topic))
			}
		}
		return nil
	})
}

func createTopics(ctx context.Context, adm *kadm.Client, partitions int32, rf int16, topics ...string) error {
	resps, err := adm.CreateTopics(ctx, partitions, rf, nil, topics...)
	if err != nil {
		return fmt.Errorf("creating topics %v: %w", topics, err)
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// retry runs fn until it succeeds, ctx ends or fn returns a permanent error,
// with capped exponential backoff and jitter, logging each failure.
func (c *Consumer) retry(ctx context.Context, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		d := backoff(attempt, c.cfg.RetryBackoffMax)
		c.log.Error(what+" failed; retrying", "attempt", attempt+1, "retry_in", d, "err", err)
		if !sleep(ctx, d) {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// permanentError marks an error that retrying cannot fix: retry returns
// the wrapped error at once.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// backoff returns 100ms·2^attempt capped at max, with ±50% jitter below it.
func backoff(attempt int, max time.Duration) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 16)
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func fmtClaims(m map[store.TopicPartition]store.Claim) map[string]string {
	out := make(map[string]string, len(m))
	for tp, cl := range m {
		v := "none"
		if cl.Next != nil {
			v = strconv.FormatInt(*cl.Next, 10)
		}
		out[tp.String()] = v + " (generation " + strconv.FormatInt(cl.Generation, 10) + ")"
	}
	return out
}
