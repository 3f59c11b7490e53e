package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

var sqlGrantRead = query("grant_read")

// GrantRead grants role read-only access to what the API reads (see
// queries/grant_read.sql), in one transaction, on the write pool. The
// schema must be migrated; run it again after each upgrade whose
// migrations recreate a view. Granting twice is harmless. A role that
// does not exist is an error (SQLSTATE 42704).
func (s *Store) GrantRead(ctx context.Context, role string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlGrantRead, s.cfg.Schema, role)
		if err != nil {
			return err
		}
		stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("granting %q read access to schema %s: %w", role, s.cfg.Schema, err)
	}
	return nil
}
