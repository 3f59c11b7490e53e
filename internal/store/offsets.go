package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Claim is a partition's stored state as ClaimOffsets found it.
type Claim struct {
	// Next is the next offset to consume; nil when nothing was committed.
	Next *int64
	// Generation identifies this claim; batches must carry it.
	Generation int64
}

// ClaimOffsets claims partitions for this writer: it makes sure each has a
// row in kafka_offsets, bumps its generation, which fences out any earlier
// owner, and returns the stored next offsets with the new generations.
func (s *Store) ClaimOffsets(ctx context.Context, tps []TopicPartition) (map[TopicPartition]Claim, error) {
	topics := make([]string, len(tps))
	parts := make([]int32, len(tps))
	for i, tp := range tps {
		topics[i], parts[i] = tp.Topic, tp.Partition
	}
	rows, err := s.pool.Query(ctx, sqlClaimOffsets, topics, parts)
	if err != nil {
		return nil, fmt.Errorf("claiming offsets: %w", err)
	}
	out := make(map[TopicPartition]Claim, len(tps))
	var tp TopicPartition
	var c Claim
	_, err = pgx.ForEachRow(rows, []any{&tp.Topic, &tp.Partition, &c.Next, &c.Generation}, func() error {
		out[tp] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claiming offsets: %w", err)
	}
	return out, nil
}

// LostPartitions returns those of the given partitions that another writer
// has claimed since the generation given for each. The consumer asks before
// producing dead letters, so that a member that lost its partitions does not
// produce them twice.
func (s *Store) LostPartitions(ctx context.Context, owned []OffsetAdvance) ([]TopicPartition, error) {
	topics := make([]string, len(owned))
	parts := make([]int32, len(owned))
	gens := make([]int64, len(owned))
	for i, a := range owned {
		topics[i], parts[i], gens[i] = a.Topic, a.Partition, a.Generation
	}
	rows, err := s.pool.Query(ctx, sqlLost, topics, parts, gens)
	if err != nil {
		return nil, fmt.Errorf("checking partition ownership: %w", err)
	}
	lost, err := pgx.CollectRows(rows, pgx.RowToStructByPos[TopicPartition])
	if err != nil {
		return nil, fmt.Errorf("checking partition ownership: %w", err)
	}
	return lost, nil
}

// AdvanceOffsetsTx moves the stored offsets in tx, each only if its row
// still holds the generation and the From offset of its OffsetAdvance. If
// any does not, it returns a *FencedError naming those partitions, and the
// caller must roll tx back: the others did move. It locks the offset rows
// it moves until tx ends, so it belongs at the end of a transaction (see
// WriteBatch).
func AdvanceOffsetsTx(ctx context.Context, tx pgx.Tx, adv []OffsetAdvance) error {
	if len(adv) == 0 {
		return nil
	}
	topics := make([]string, len(adv))
	parts := make([]int32, len(adv))
	gens := make([]int64, len(adv))
	froms := make([]*int64, len(adv))
	tos := make([]int64, len(adv))
	times := make([]*time.Time, len(adv))
	for i, a := range adv {
		topics[i], parts[i], gens[i], froms[i], tos[i] = a.Topic, a.Partition, a.Generation, a.From, a.To
		if !a.MaxEventTime.IsZero() {
			times[i] = &adv[i].MaxEventTime
		}
	}
	rows, err := tx.Query(ctx, sqlAdvance, topics, parts, gens, froms, tos, times)
	if err != nil {
		return fmt.Errorf("advancing offsets: %w", err)
	}
	moved, err := pgx.CollectRows(rows, pgx.RowToStructByPos[TopicPartition])
	if err != nil {
		return fmt.Errorf("advancing offsets: %w", err)
	}
	if len(moved) == len(adv) {
		return nil
	}
	ok := make(map[TopicPartition]bool, len(moved))
	for _, tp := range moved {
		ok[tp] = true
	}
	fe := &FencedError{}
	for _, a := range adv {
		if tp := (TopicPartition{a.Topic, a.Partition}); !ok[tp] {
			fe.Partitions = append(fe.Partitions, tp)
		}
	}
	return fe
}
