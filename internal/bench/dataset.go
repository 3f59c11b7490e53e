package bench

import (
	"hash/fnv"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/workload"
)

const (
	userTopic  = "user_events"
	orgTopic   = "org_events"
	partitions = 6
)

// dataset is the generated stream, as records for Kafka and decoded for the
// paths that skip Kafka.
type dataset struct {
	recs []workload.Record
	// items are the records in stream order, decoded, with the partition
	// and offset Kafka-like key hashing gives them.
	items []item
}

type item struct {
	kind  workload.Kind
	user  event.User
	org   event.Org
	valid bool
	pos   event.Position
}

func partitionOf(key []byte) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % partitions)
}

func generate(cfg workload.Config) (*dataset, error) {
	g, err := workload.New(cfg)
	if err != nil {
		return nil, err
	}
	d := &dataset{}
	dec := event.NewDecoder(0)
	var next [2][partitions]int64
	now := time.Now()
	for {
		r, ok := g.Next()
		if !ok {
			break
		}
		d.recs = append(d.recs, r)
		p := partitionOf(r.Key)
		it := item{kind: r.Kind, pos: event.Position{Partition: p, Offset: next[r.Kind][p]}}
		next[r.Kind][p]++
		if r.Kind == workload.UserEvent {
			it.user, err = dec.User(r.Value, it.pos)
			it.user.LogTime = now
		} else {
			it.org, err = dec.Org(r.Value, it.pos)
			it.org.LogTime = now
		}
		it.valid = err == nil
		d.items = append(d.items, it)
	}
	return d, nil
}
