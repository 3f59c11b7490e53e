package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
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
}

// Claim is a partition's stored state as ClaimOffsets found it.
type Claim struct {
	// Next is the next offset to consume; nil when nothing was committed.
	Next *int64
	// Generation identifies this claim; batches must carry it.
	Generation int64
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

// WriteBatch writes b in one transaction: it appends the raw logs, upserts
// the newest event per key into users and organizations, and advances the
// stored offsets (fenced on their generation and old values). Either all of
// it commits or none of it does.
//
// The offset advance comes last so that the transaction locks the offset
// rows, which a successor's claim must update, only in its last statement.
// A process frozen while it streams a COPY keeps its session active, and no
// PostgreSQL timeout ends that; holding no offset row then, it cannot stall
// the claim. Frozen after a statement, its session is idle in transaction
// and PostgreSQL ends it after the idle-in-transaction timeout.
//
// If another writer has claimed a partition since this one did, or moved its
// offset, WriteBatch rolls back and returns a *FencedError. Other errors can
// be sorted with Classify; the caller decides whether to retry.
func (s *Store) WriteBatch(ctx context.Context, b *Batch) error {
	users := event.LatestUsers(b.Users)
	orgs := event.LatestOrgs(b.Orgs)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(b.Users) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"user_events"}, userEventCols, userEventRows(b.UserTopic, b.Users)); err != nil {
				return fmt.Errorf("copying user_events: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_users"}, stageUserCols, stageUserRows(users)); err != nil {
				return fmt.Errorf("staging users: %w", err)
			}
			if _, err := tx.Exec(ctx, sqlUpsertUsers); err != nil {
				return fmt.Errorf("upserting users: %w", err)
			}
		}
		if len(b.Orgs) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"org_events"}, orgEventCols, orgEventRows(b.OrgTopic, b.Orgs)); err != nil {
				return fmt.Errorf("copying org_events: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_orgs"}, stageOrgCols, stageOrgRows(orgs)); err != nil {
				return fmt.Errorf("staging organizations: %w", err)
			}
			if _, err := tx.Exec(ctx, sqlUpsertOrgs); err != nil {
				return fmt.Errorf("upserting organizations: %w", err)
			}
		}
		return advanceOffsets(ctx, tx, b.Offsets)
	})
	if err != nil {
		return fmt.Errorf("writing batch: %w", err)
	}
	return nil
}

func advanceOffsets(ctx context.Context, tx pgx.Tx, adv []OffsetAdvance) error {
	if len(adv) == 0 {
		return nil
	}
	topics := make([]string, len(adv))
	parts := make([]int32, len(adv))
	gens := make([]int64, len(adv))
	froms := make([]*int64, len(adv))
	tos := make([]int64, len(adv))
	for i, a := range adv {
		topics[i], parts[i], gens[i], froms[i], tos[i] = a.Topic, a.Partition, a.Generation, a.From, a.To
	}
	rows, err := tx.Query(ctx, sqlAdvance, topics, parts, gens, froms, tos)
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

var (
	userEventCols = []string{"topic", "partition", "offset", "id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "kafka_timestamp"}
	orgEventCols  = []string{"topic", "partition", "offset", "organization_key", "organization_name", "organization_tier", "created_at", "kafka_timestamp"}
	stageUserCols = []string{"id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "source_partition", "source_offset"}
	stageOrgCols  = []string{"organization_name", "organization_key", "organization_tier", "created_at", "source_partition", "source_offset"}
)

func userEventRows(topic string, us []event.User) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(us), func(i int) ([]any, error) {
		u := &us[i]
		return []any{topic, u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.LogTime}, nil
	})
}

func stageUserRows(us []event.User) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(us), func(i int) ([]any, error) {
		u := &us[i]
		return []any{u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.Pos.Partition, u.Pos.Offset}, nil
	})
}

func orgEventRows(topic string, os []event.Org) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(os), func(i int) ([]any, error) {
		o := &os[i]
		return []any{topic, o.Pos.Partition, o.Pos.Offset, o.Key, o.Name, o.Tier, o.CreatedAt, o.LogTime}, nil
	})
}

func stageOrgRows(os []event.Org) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(os), func(i int) ([]any, error) {
		o := &os[i]
		return []any{o.Name, o.Key, o.Tier, o.CreatedAt, o.Pos.Partition, o.Pos.Offset}, nil
	})
}
