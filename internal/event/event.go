// Package event defines the records streamjoin consumes, how they are decoded
// and validated, and which of two events for the same key wins.
//
// Everything here is pure and safe for concurrent use: decoding allocates a
// fresh value per call and keeps no state.
package event

import (
	"cmp"
	"time"
)

// UserEventType is the kind of change a user event describes.
type UserEventType uint8

// The user event types, in precedence order: on equal event times a Deleted
// beats an Updated, which beats a Created.
const (
	UserCreated UserEventType = iota
	UserUpdated
	UserDeleted
)

// String returns the wire form of t, as it appears in event_type.
func (t UserEventType) String() string {
	switch t {
	case UserCreated:
		return "User Created"
	case UserUpdated:
		return "User Updated"
	case UserDeleted:
		return "User Deleted"
	}
	return "unknown"
}

// Position locates a record in Kafka. Together with the event time it breaks
// ties deterministically: the same topic contents always give the same state.
type Position struct {
	Partition int32
	Offset    int64
}

// Compare orders positions by partition, then offset.
func (p Position) Compare(o Position) int {
	if c := cmp.Compare(p.Partition, o.Partition); c != 0 {
		return c
	}
	return cmp.Compare(p.Offset, o.Offset)
}

// User is a valid user event. Optional fields are nil when the JSON held null
// or left them out; a Deleted event may have every field but ID and
// ReceivedAt nil.
type User struct {
	ID               string
	Type             UserEventType
	Username         *string
	Email            *string
	UserType         *string
	OrganizationName *string
	ReceivedAt       time.Time // UTC, truncated to microseconds
	Pos              Position
	LogTime          time.Time // the Kafka record's timestamp
}

// Org is a valid organization event.
type Org struct {
	Key       *string
	Name      string
	Tier      *string
	CreatedAt time.Time // UTC, truncated to microseconds
	Pos       Position
	LogTime   time.Time // the Kafka record's timestamp
}

// NewerUser reports whether a should replace b as a user's current state:
// the greater received_at wins; on equal times Deleted beats Updated beats
// Created; after that the greater position wins.
func NewerUser(a, b *User) bool {
	if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
		return c > 0
	}
	if a.Type != b.Type {
		return a.Type > b.Type
	}
	return a.Pos.Compare(b.Pos) > 0
}

// NewerOrg reports whether a should replace b as an organization's current
// state: the greater created_at wins; on equal times the later record
// (greater position) wins.
func NewerOrg(a, b *Org) bool {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c > 0
	}
	return a.Pos.Compare(b.Pos) > 0
}
