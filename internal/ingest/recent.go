package ingest

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
)

// recentSize is how many dead letters RecentDeadLetters keeps.
const recentSize = 10

// DeadLetter is a dead letter whose source offset was committed, as the
// status page lists it.
type DeadLetter struct {
	Topic     string // the source topic
	Partition int32
	Offset    int64
	Code      string // the reason's code (dlq.HeaderErrorCode)
	Reason    string // the reason (dlq.HeaderError)
	At        time.Time
}

// recentDeadLetters is a ring of the last recentSize dead letters whose
// batch committed. Its zero value is empty and ready; it is safe for
// concurrent use (the lanes add, HTTP handlers read).
type recentDeadLetters struct {
	mu   sync.Mutex
	ring [recentSize]DeadLetter
	next int // where the next one goes
	n    int // how many are held, up to recentSize
}

// add records d, the dead-letter record as produced (dlq.Format), as
// committed at now.
func (r *recentDeadLetters) add(d *kgo.Record, now time.Time) {
	src := sourceOf(d)
	dl := DeadLetter{
		Topic: src.tp.Topic, Partition: src.tp.Partition, Offset: src.offset,
		Code: dlq.Header(d, dlq.HeaderErrorCode), Reason: dlq.Header(d, dlq.HeaderError), At: now,
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[r.next] = dl
	r.next = (r.next + 1) % recentSize
	r.n = min(r.n+1, recentSize)
}

// list returns the dead letters held, newest first.
func (r *recentDeadLetters) list() []DeadLetter {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]DeadLetter, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.ring[(r.next-i+recentSize)%recentSize])
	}
	return out
}

// RecentDeadLetters returns the last dead letters (at most 10) whose
// offsets this consumer committed, newest first. Safe to call from any
// goroutine.
func (c *Consumer) RecentDeadLetters() []DeadLetter { return c.recent.list() }
