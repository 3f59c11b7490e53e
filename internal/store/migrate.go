package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and an underscore", name)
		}
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate creates the schema if needed and applies every embedded migration
// not yet applied, each in its own transaction, and, for a store with the
// as-of join on (Config.Enriched), creates the raw user log's index that
// its corrections read (ensureEnrichedIndex). Concurrent callers are
// serialized by an advisory lock, so many processes may start at once. It
// returns the number of migrations applied.
func (s *Store) Migrate(ctx context.Context) (int, error) { return s.MigrateTo(ctx, 0) }

// MigrateTo is Migrate, but stops after migration version upTo (0: all of
// them). It exists for tests of a migration against data written under the
// schema before it.
func (s *Store) MigrateTo(ctx context.Context, upTo int) (int, error) {
	ms, err := migrations()
	if err != nil {
		return 0, err
	}
	if upTo > 0 {
		kept := ms[:0]
		for _, m := range ms {
			if m.version <= upTo {
				kept = append(kept, m)
			}
		}
		ms = kept
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrating: %w", err)
	}
	defer conn.Release()
	schema := quoteIdent(s.cfg.Schema)
	lockKey := "streamjoin.migrate." + s.cfg.Schema
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", lockKey); err != nil {
		return 0, fmt.Errorf("taking migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext($1))", lockKey) //nolint:errcheck // the lock dies with the session anyway
	setup := "CREATE SCHEMA IF NOT EXISTS " + schema + ";" +
		"CREATE TABLE IF NOT EXISTS " + schema + ".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
	if _, err := conn.Exec(ctx, setup); err != nil {
		return 0, fmt.Errorf("creating schema %s: %w", s.cfg.Schema, err)
	}
	applied := 0
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+schema+".schema_migrations WHERE version = $1)", m.version).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+schema); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
			applied++
			s.logger.Info("applied migration", "schema", s.cfg.Schema, "migration", m.name)
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("applying migration %s: %w", m.name, err)
		}
	}
	if s.cfg.Enriched && upTo == 0 {
		if err := s.ensureEnrichedIndex(ctx, conn.Conn()); err != nil {
			return applied, err
		}
	}
	return applied, nil
}
