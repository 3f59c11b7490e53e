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
// seed's approach, on the first SeedSample valid user events. Any failed
// statement fails the measurement: the loop goes on to count the failures
// of the whole sample, and the error gives the count and the first one.
func (b *bencher) seedLoop(ctx context.Context, run int, r *RunResult) error {
	conn, done, err := b.schemaConn(ctx, fmt.Sprintf("bench_d_%d", run))
	if err != nil {
		return err
	}
	defer done()
	n, failed := 0, 0
	var first error
	start := time.Now()
	for i := range b.data.items {
		it := &b.data.items[i]
		if !it.valid || it.kind != workload.UserEvent {
			continue
		}
		u := &it.user
		_, err := conn.Exec(ctx, sqlSeedInsert, userTopic, u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.LogTime)
		if err != nil {
			err = fmt.Errorf("seed insert: %w", err)
		} else if _, err = conn.Exec(ctx, sqlSeedUpsert, u.ID, u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.Type == event.UserDeleted, u.Type.String(), u.Pos.Partition, u.Pos.Offset); err != nil {
			err = fmt.Errorf("seed upsert: %w", err)
		}
		if err != nil {
			if failed++; first == nil {
				first = err
			}
		}
		if n++; n >= b.cfg.SeedSample {
			break
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d events failed; the first: %w", failed, n, first)
	}
	r.SeedLoop = float64(n) / time.Since(start).Seconds()
	return nil
}
