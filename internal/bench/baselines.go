package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// rawCopy is (a): COPY the valid user rows into a table without indexes.
func (b *bencher) rawCopy(ctx context.Context, run int, r *RunResult) error {
	conn, done, err := b.schemaConn(ctx, fmt.Sprintf("bench_a_%d", run))
	if err != nil {
		return err
	}
	defer done()
	if _, err := conn.Exec(ctx, sqlRawTable); err != nil {
		return fmt.Errorf("creating the raw table: %w", err)
	}
	var rows [][]any
	for i := range b.data.items {
		it := &b.data.items[i]
		if it.valid && it.kind == workload.UserEvent {
			u := &it.user
			rows = append(rows, []any{userTopic, u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.LogTime})
		}
	}
	cols := []string{"topic", "partition", "offset", "id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "kafka_timestamp"}
	start := time.Now()
	const chunk = 100_000
	for i := 0; i < len(rows); i += chunk {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"bench_raw_copy"}, cols, pgx.CopyFromRows(rows[i:min(i+chunk, len(rows))])); err != nil {
			return fmt.Errorf("copying: %w", err)
		}
	}
	r.RawCopy = float64(len(rows)) / time.Since(start).Seconds()
	return nil
}

// seedLoop is (d): one autocommitted insert and one upsert per event, the
// seed's approach, on a sample.
func (b *bencher) seedLoop(ctx context.Context, run int, r *RunResult) error {
	conn, done, err := b.schemaConn(ctx, fmt.Sprintf("bench_d_%d", run))
	if err != nil {
		return err
	}
	defer done()
	n := 0
	start := time.Now()
	for i := range b.data.items {
		it := &b.data.items[i]
		if !it.valid || it.kind != workload.UserEvent {
			continue
		}
		u := &it.user
		if _, err := conn.Exec(ctx, sqlSeedInsert, userTopic, u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.LogTime); err != nil {
			// A duplicate record has the same position in this dataset
			// only if it is the same record; the seed would fail too.
			continue
		}
		if _, err := conn.Exec(ctx, sqlSeedUpsert, u.ID, u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.Type == event.UserDeleted, u.Type.String(), u.Pos.Partition, u.Pos.Offset); err != nil {
			return fmt.Errorf("seed upsert: %w", err)
		}
		if n++; n >= b.cfg.SeedSample {
			break
		}
	}
	r.SeedLoop = float64(n) / time.Since(start).Seconds()
	return nil
}
