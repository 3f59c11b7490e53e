package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	ClaimOffsets(ctx context.Context, tps []store.TopicPartition) (map[store.TopicPartition]*int64, error)
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
// topics and commits each poll to PostgreSQL in one transaction, together
// with the offsets it covers. Offsets live in PostgreSQL; on assignment the
// consumer resumes from there, which makes the effect exactly-once without
// Kafka transactions.
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
	next     map[store.TopicPartition]*int64 // stored next offset, as this member last saw it
	dlqParts map[string]int32                // dead-letter topic → partition count
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
		next:     make(map[store.TopicPartition]*int64),
		dlqParts: make(map[string]int32),
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
		cl.Close()
		c.log.Info("kafka consumer closed")
	}()
	c.log.Info("consuming", "brokers", c.cfg.Brokers, "group", c.cfg.Group, "topics", []string{c.cfg.UserTopic, c.cfg.OrgTopic})

	for {
		fetches := cl.PollRecords(ctx, c.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			// Records polled after shutdown began are not processed;
			// they were not committed and will be read again.
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			c.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		})
		if fetches.NumRecords() > 0 {
			if err := c.process(work, cl, fetches); err != nil {
				cl.AllowRebalance()
				if work.Err() != nil {
					c.log.Warn("shutdown timeout: batch in flight abandoned; it will be read again", "err", err)
					return nil
				}
				return err
			}
		}
		cl.AllowRebalance()
	}
}

func (c *Consumer) startOffset() kgo.Offset {
	if c.cfg.StartOffset == "latest" {
		return kgo.NewOffset().AtEnd()
	}
	return kgo.NewOffset().AtStart()
}

// claim reads the stored offsets of tps, retrying until ctx ends.
func (c *Consumer) claim(ctx context.Context, tps []store.TopicPartition) (map[store.TopicPartition]*int64, error) {
	var stored map[store.TopicPartition]*int64
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
		kgo.ConsumeTopics(c.cfg.UserTopic, c.cfg.OrgTopic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeStartOffset(start),
		kgo.ConsumeResetOffset(start),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			c.joined.Store(true)
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

// adjustOffsets replaces the offsets Kafka has committed for newly assigned
// partitions with the ones stored in PostgreSQL, the source of truth.
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
	stored, err := c.claim(ctx, tps)
	if err != nil {
		return nil, err
	}
	start := c.startOffset()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		next := stored[tp]
		c.next[tp] = next
		if next == nil {
			offsets[tp.Topic][tp.Partition] = start
		} else {
			offsets[tp.Topic][tp.Partition] = kgo.NewOffset().At(*next).WithEpoch(-1)
		}
	}
	c.log.Debug("resuming from offsets stored in postgres", "offsets", fmtOffsets(stored))
	return offsets, nil
}

func (c *Consumer) forget(parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(c.next, store.TopicPartition{Topic: topic, Partition: p})
		}
	}
}

// process turns one poll into one Postgres transaction. Dead letters are
// produced, and acknowledged, before the transaction that moves the offset
// past them. It returns an error only when ctx ends first.
func (c *Consumer) process(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) error {
	started := time.Now()
	b := &store.Batch{UserTopic: c.cfg.UserTopic, OrgTopic: c.cfg.OrgTopic}
	var dead []*kgo.Record
	last := make(map[store.TopicPartition]int64)

	c.mu.Lock()
	next := make(map[store.TopicPartition]*int64, len(c.next))
	for tp, n := range c.next {
		next[tp] = n
	}
	c.mu.Unlock()

	fetches.EachRecord(func(r *kgo.Record) {
		tp := store.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		n, owned := next[tp]
		if !owned || (n != nil && r.Offset < *n) {
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
			dead = append(dead, c.deadLetter(r, err))
		}
	})
	if len(last) == 0 {
		return nil
	}
	for tp, off := range last {
		b.Offsets = append(b.Offsets, store.OffsetAdvance{Topic: tp.Topic, Partition: tp.Partition, From: next[tp], To: off + 1})
	}

	if len(dead) > 0 {
		if err := c.produceDeadLetters(ctx, cl, dead); err != nil {
			return err
		}
	}
	if err := c.write(ctx, cl, b); err != nil {
		return err
	}

	c.mu.Lock()
	commit := make(map[string]map[int32]kgo.EpochOffset)
	for _, a := range b.Offsets {
		tp := store.TopicPartition{Topic: a.Topic, Partition: a.Partition}
		if _, owned := c.next[tp]; owned {
			to := a.To
			c.next[tp] = &to
		}
		if commit[a.Topic] == nil {
			commit[a.Topic] = make(map[int32]kgo.EpochOffset)
		}
		commit[a.Topic][a.Partition] = kgo.EpochOffset{Epoch: -1, Offset: a.To}
	}
	c.mu.Unlock()
	// Kafka's committed offsets are only for lag tools; PostgreSQL is the
	// source of truth, so this commit is asynchronous and best effort.
	cl.CommitOffsets(context.WithoutCancel(ctx), commit, func(_ *kgo.Client, _ *kmsgCommitReq, _ *kmsgCommitResp, err error) {
		if err != nil {
			c.log.Debug("committing offsets to kafka for lag tools", "err", err)
		}
	})
	// Count only what committed; a fenced partition's records were dropped.
	c.metrics.records.WithLabelValues(c.cfg.UserTopic, "valid").Add(float64(len(b.Users)))
	c.metrics.records.WithLabelValues(c.cfg.OrgTopic, "valid").Add(float64(len(b.Orgs)))
	committed := make(map[store.TopicPartition]bool, len(b.Offsets))
	for _, a := range b.Offsets {
		committed[store.TopicPartition{Topic: a.Topic, Partition: a.Partition}] = true
	}
	for _, d := range dead {
		src := headerValue(d, HeaderSourceTopic)
		if p, _ := strconv.Atoi(headerValue(d, HeaderSourcePartition)); committed[store.TopicPartition{Topic: src, Partition: int32(p)}] {
			c.metrics.records.WithLabelValues(src, "dead_letter").Inc()
			c.metrics.deadLetters.WithLabelValues(src, headerValue(d, HeaderErrorCode)).Inc()
		}
	}
	c.metrics.batches.Inc()
	c.metrics.batchSeconds.Observe(time.Since(started).Seconds())
	c.log.Debug("batch committed", "users", len(b.Users), "orgs", len(b.Orgs), "dead_letters", len(dead), "took", time.Since(started))
	return nil
}

// write commits b, retrying conflicts at once and outages with backoff. When
// PostgreSQL fences some partitions (another member owns them now), their
// records are dropped from the batch, the partitions are rewound to the
// stored offsets, and the rest is written.
func (c *Consumer) write(ctx context.Context, cl *kgo.Client, b *store.Batch) error {
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
			c.log.Warn("batch fenced: another member moved the stored offsets; dropping those partitions from the batch", "partitions", fe.Partitions)
			dropPartitions(b, fe.Partitions)
			c.rewind(ctx, cl, fe.Partitions)
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

// rewind reloads the stored offsets of tps and seeks the client there, so
// that if this member still owns them it resumes from what was committed.
func (c *Consumer) rewind(ctx context.Context, cl *kgo.Client, tps []store.TopicPartition) {
	stored, err := c.claim(ctx, tps)
	if err != nil {
		return
	}
	seek := make(map[string]map[int32]kgo.EpochOffset)
	c.mu.Lock()
	for _, tp := range tps {
		n := stored[tp]
		if _, owned := c.next[tp]; !owned || n == nil {
			continue
		}
		c.next[tp] = n
		if seek[tp.Topic] == nil {
			seek[tp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		seek[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: *n}
	}
	c.mu.Unlock()
	cl.SetOffsets(seek)
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
	topic := c.DLQTopic(r.Topic)
	c.mu.Lock()
	n := c.dlqParts[topic]
	c.mu.Unlock()
	if n < 1 {
		n = 1
	}
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
		Topic:     topic,
		Partition: r.Partition % n,
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
// move past them.
func (c *Consumer) produceDeadLetters(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	pending := recs
	for attempt := 0; ; attempt++ {
		var failed []*kgo.Record
		var firstErr error
		for _, res := range cl.ProduceSync(ctx, pending...) {
			if res.Err != nil {
				failed = append(failed, res.Record)
				if firstErr == nil {
					firstErr = res.Err
				}
			}
		}
		if len(failed) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("producing dead letters: %w", ctx.Err())
		}
		d := backoff(attempt, c.cfg.RetryBackoffMax)
		c.log.Error("producing dead letters failed; offsets stay put until they are acknowledged", "failed", len(failed), "retry_in", d, "err", firstErr)
		if !sleep(ctx, d) {
			return fmt.Errorf("producing dead letters: %w", ctx.Err())
		}
		pending = failed
	}
}

// prepareTopics waits for the brokers, creates missing topics if configured
// to, and learns the dead-letter topics' partition counts.
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
		}
		dlqs := []string{c.DLQTopic(c.cfg.UserTopic), c.DLQTopic(c.cfg.OrgTopic)}
		dd, err := adm.ListTopics(ctx, dlqs...)
		if err != nil {
			return fmt.Errorf("listing dead-letter topics: %w", err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, topic := range dlqs {
			d, ok := dd[topic]
			if !ok || d.Err != nil || len(d.Partitions) == 0 {
				return fmt.Errorf("dead-letter topic %s does not exist (create-topics is off): %v", topic, d.Err)
			}
			c.dlqParts[topic] = int32(len(d.Partitions))
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

// retry runs fn until it succeeds or ctx ends, with capped exponential
// backoff and jitter, logging each failure.
func (c *Consumer) retry(ctx context.Context, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
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

func fmtOffsets(m map[store.TopicPartition]*int64) map[string]string {
	out := make(map[string]string, len(m))
	for tp, n := range m {
		v := "none"
		if n != nil {
			v = strconv.FormatInt(*n, 10)
		}
		out[tp.String()] = v
	}
	return out
}
