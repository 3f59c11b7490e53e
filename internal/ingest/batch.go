package ingest

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
)

// pending is one poll, or a lane's share of it, on its way to PostgreSQL:
// decoded, and its dead letters acknowledged.
type pending struct {
	b       *store.Batch // the lane owns it once submitted
	gens    map[store.TopicPartition]int64
	dead    []*kgo.Record
	started time.Time
	gate    *stateGate // a log share's batch state; nil before submit
}

// prepare turns one poll into a batch: it decodes the records and produces
// the dead letters, acknowledged, before any transaction can move the offset
// past them; those a crashed predecessor already produced are not produced
// again. A partition whose previous batch is still queued or committing
// continues from where that batch leaves it. It returns nil when nothing is
// left to commit, and an error only when ctx ends first.
func (c *Consumer) prepare(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) (*pending, error) {
	started := time.Now()
	b := &store.Batch{UserTopic: c.cfg.UserTopic, OrgTopic: c.cfg.OrgTopic}
	var dead []*kgo.Record
	last := make(map[store.TopicPartition]int64)
	maxAt := make(map[store.TopicPartition]time.Time) // greatest event time of valid events
	var redundant int                                 // dead letters already in the DLQ

	c.mu.Lock()
	owned := make(map[store.TopicPartition]partState, len(c.owned))
	for tp, st := range c.owned {
		// Where the last batch submitted leaves the partition, unless the
		// partition was claimed again since it was prepared.
		if pr, ok := c.prepared[tp]; ok && pr.gen == st.gen {
			next := pr.next
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
				if err = event.CheckLogTime(r.Timestamp); err == nil {
					u.LogTime = r.Timestamp
					b.Users = append(b.Users, u)
					if u.ReceivedAt.After(maxAt[tp]) {
						maxAt[tp] = u.ReceivedAt
					}
				}
			}
		case c.cfg.OrgTopic:
			var o event.Org
			if o, err = c.dec.Org(r.Value, pos); err == nil {
				if err = event.CheckLogTime(r.Timestamp); err == nil {
					o.LogTime = r.Timestamp
					b.Orgs = append(b.Orgs, o)
					if o.CreatedAt.After(maxAt[tp]) {
						maxAt[tp] = o.CreatedAt
					}
				}
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
		if tp := sourceOf(d).tp; owned[tp].dlqDone == dlqUnread && !slices.Contains(unread, tp) {
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
		b.Offsets = append(b.Offsets, store.OffsetAdvance{Topic: tp.Topic, Partition: tp.Partition, Generation: st.gen, From: st.next, To: off + 1, MaxEventTime: maxAt[tp]})
	}
	c.markActive(gens, started)
	if redundant > 0 {
		c.log.Info("dead letters already produced before a restart were not produced again", "count", redundant)
	}

	if len(dead) > 0 {
		var err error
		if dead, err = c.produceDeadLetters(ctx, cl, b, dead, unread, gens); err != nil {
			return nil, err
		}
		if len(b.Offsets) == 0 {
			return nil, nil
		}
	}
	return &pending{b: b, gens: gens, dead: dead, started: started}, nil
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
