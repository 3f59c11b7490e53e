package store

import (
	"fmt"
	"strings"
)

// TopicPartition names a Kafka partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// FencedError means a batch was rolled back because another writer moved the
// stored offset of some partition: this writer no longer owns it.
type FencedError struct {
	Partitions []TopicPartition
}

func (e *FencedError) Error() string {
	parts := make([]string, len(e.Partitions))
	for i, tp := range e.Partitions {
		parts[i] = tp.String()
	}
	return "fenced: stored offsets moved by another writer for " + strings.Join(parts, ", ")
}

// Class says how the caller should treat an error from the store.
type Class int

// The error classes.
const (
	// Permanent: retrying the same statement will fail the same way, or
	// the error is not one Classify recognizes (a bug, a bad value, a
	// failed migration): never assume a retry helps.
	Permanent Class = iota
	// Conflict: a serialization failure or deadlock; retry at once.
	Conflict
	// Unavailable: the database cannot be reached or is shutting down;
	// retry with backoff.
	Unavailable
	// Fenced: another writer owns the partition; do not retry.
	Fenced
	// Canceled: the caller's context ended.
	Canceled
)

func (c Class) String() string {
	return [...]string{"permanent", "conflict", "unavailable", "fenced", "canceled"}[c]
}
