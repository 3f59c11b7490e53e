package store

import "github.com/streamjoin/streamjoin/internal/event"

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
	subs := make([]*Batch, n)
	for i := range subs {
		subs[i] = &Batch{UserTopic: b.UserTopic, OrgTopic: b.OrgTopic}
	}
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
