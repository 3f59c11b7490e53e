package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A read pool serves the API's reads: UsersByName, UsersByNames and
// SchemaVersion. Open gives a Store one when Config.ReadDSN names another
// DSN (a read replica: what it returns lags the primary by the replica's
// replay lag); OpenRead gives a Store nothing else.
//
// A read pool's sessions are read-only (default_transaction_read_only) and
// create no staging tables, so a hot standby, or a role that holds only
// what GrantRead grants, can serve them.

// newReadPool creates a read pool on dsn. Like Open, it does not wait for
// the database.
func newReadPool(ctx context.Context, cfg Config, dsn string) (*pgxpool.Pool, error) {
	pcfg, err := poolConfig(cfg, dsn)
	if err != nil {
		return nil, err
	}
	pcfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("creating postgres read pool: %w", err)
	}
	return pool, nil
}

// OpenRead opens a Store for the API alone (the api role): one read pool on
// cfg.ReadDSN, or on cfg.DSN if that is empty, and no other. Its read
// methods and Ping work; every write fails (the sessions are read-only), and
// so does Migrate. Close releases it.
func OpenRead(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	cfg = cfg.WithDefaults()
	if cfg.ReadDSN != "" {
		cfg.DSN = cfg.ReadDSN
	}
	cfg.ReadDSN = ""
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pool, err := newReadPool(ctx, cfg, cfg.DSN)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool, read: pool, cfg: cfg, logger: logger}, nil
}

// LatestMigration is the version of the newest migration this binary
// embeds: a schema at it or past it is one this binary can read.
func LatestMigration() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		panic(fmt.Sprintf("store: embedded migrations: %v", err)) // a build defect
	}
	return ms[len(ms)-1].version
}

// SchemaVersion returns the newest migration applied to the schema, read
// through the read pool. A schema or migrations table that does not exist
// yet, or that the role may not read yet (its grants come after the
// migrations), is version 0 with a nil error. Other errors are returned
// as they are, for Classify.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	var v int
	err := s.read.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+quoteIdent(s.cfg.Schema)+".schema_migrations").Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgerrcode.InvalidSchemaName, pgerrcode.UndefinedTable, pgerrcode.InsufficientPrivilege:
			return 0, nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return v, nil
}
