package bench

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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
	// and offset the broker gives them when a default kgo producer sends them.
	items []item
}

type item struct {
	kind  workload.Kind
	user  event.User
	org   event.Org
	valid bool
	pos   event.Position
}

// keyPartitioner is the partitioner a kgo client uses by default for a
// keyed record (UniformBytesPartitioner and StickyKeyPartitioner both hash
// keys so): murmur2, as Kafka's Java client does. Keyed partitioning does
// not depend on the topic.
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// partitionOf returns the partition a default kgo producer sends a record
// with this (non-nil) key to.
func partitionOf(key []byte) int32 {
	return int32(keyPartitioner.Partition(&kgo.Record{Key: key}, partitions))
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
