package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
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
	// Permanent: retrying the same statement will fail the same way.
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

// Classify sorts err into a Class, by SQLSTATE where PostgreSQL answered.
func Classify(err error) Class {
	var fe *FencedError
	switch {
	case err == nil:
		return Permanent
	case errors.As(err, &fe):
		return Fenced
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "40001", pgErr.Code == "40P01":
			return Conflict
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),                                 // insufficient resources
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, cannot connect now
			pgErr.Code == "57014": // statement timeout / query canceled
			return Unavailable
		}
		return Permanent
	}
	// Anything that is not an answer from PostgreSQL is a transport failure:
	// a refused or dropped connection, a timeout, a closed pool. Retrying
	// after a backoff is right for all of them.
	return Unavailable
}
