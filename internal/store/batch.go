package store

import (
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
)

// OffsetAdvance moves one partition's stored offset. Generation is the one
// the writer claimed (ClaimOffsets); From is the offset the writer last saw
// (nil: nothing stored yet); To is the next offset to consume after the
// batch.
type OffsetAdvance struct {
	Topic      string
	Partition  int32
	Generation int64
	From       *int64
	To         int64
	// MaxEventTime is the greatest event time of the batch's valid
	// events of the partition (zero: none); the partition's checkpointed
	// event time moves to it if it is greater.
	MaxEventTime time.Time
}

// Batch is what one transaction writes: every valid record for the raw logs,
// and the offsets that cover them. Users and Orgs may be in any order and may
// hold several events per key.
type Batch struct {
	UserTopic string
	OrgTopic  string
	Users     []event.User
	Orgs      []event.Org
	Offsets   []OffsetAdvance
}

// Split divides b into at most n batches by partition number (partition mod
// n), dropping empty ones, so that writers can commit them in parallel with
// no offset row in common. It returns b itself when one is enough. The
// batches share no slices with b.
func (b *Batch) Split(n int) []*Batch {
	if n <= 1 || len(b.Offsets) <= 1 {
		return []*Batch{b}
	}
	used := map[int]bool{}
	for _, a := range b.Offsets {
		used[int(a.Partition)%n] = true
	}
	if len(used) == 1 {
		return []*Batch{b}
	}
	subs := b.shards(n, func(u *event.User) int { return int(u.Pos.Partition) % n }, func(o *event.Org) int { return int(o.Pos.Partition) % n })
	for _, u := range b.Users {
		s := subs[int(u.Pos.Partition)%n]
		s.Users = append(s.Users, u)
	}
	for _, o := range b.Orgs {
		s := subs[int(o.Pos.Partition)%n]
		s.Orgs = append(s.Orgs, o)
	}
	for _, a := range b.Offsets {
		s := subs[int(a.Partition)%n]
		s.Offsets = append(s.Offsets, a)
	}
	out := subs[:0]
	for _, s := range subs {
		if len(s.Offsets) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// SplitByKey divides b's events into n batches by key, for state writers
// that must never touch the same row: batch i holds the users of shard i
// (by id, the same shard in every call), batch 0 also every organization,
// and any may be empty. The batches carry no offsets (state alone is idempotent; see
// WriteState) and share no slices with b.
func (b *Batch) SplitByKey(n int) []*Batch {
	n = max(n, 1)
	subs := b.shards(n, func(u *event.User) int { return keyShard(u.ID, n) }, func(*event.Org) int { return 0 })
	for _, u := range b.Users {
		s := subs[keyShard(u.ID, n)]
		s.Users = append(s.Users, u)
	}
	// Every organization goes to shard 0: with the changelog on, a tier
	// change holds the changelog lock exclusively, and one organizations
	// transaction per batch takes it once rather than once per writer.
	// Organizations are a small part of a stream, and the upsert does not
	// care where a key goes, only that no two shards hold the same one.
	s := subs[0]
	s.Orgs = append(s.Orgs, b.Orgs...)
	return subs
}

// keyShard is FNV-1a of key, mod n.
func keyShard(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// shards returns n empty batches with room for the events userShard and
// orgShard assign to each, so that filling them copies each event once.
func (b *Batch) shards(n int, userShard func(*event.User) int, orgShard func(*event.Org) int) []*Batch {
	users := make([]int, n)
	orgs := make([]int, n)
	for i := range b.Users {
		users[userShard(&b.Users[i])]++
	}
	for i := range b.Orgs {
		orgs[orgShard(&b.Orgs[i])]++
	}
	subs := make([]*Batch, n)
	for i := range subs {
		subs[i] = &Batch{UserTopic: b.UserTopic, OrgTopic: b.OrgTopic,
			Users: make([]event.User, 0, users[i]), Orgs: make([]event.Org, 0, orgs[i])}
	}
	return subs
}
