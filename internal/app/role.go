package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// Role is which parts of streamjoin a process runs. Every role serves
// /health, /ready and /metrics, HTTP first.
type Role string

const (
	// RoleAll runs the pipeline, the changelog relay and the API, and
	// migrates the schema. /ready: PostgreSQL answers, the schema is
	// migrated and the consumer is in its group.
	RoleAll Role = "all"
	// RoleIngest runs the pipeline and the changelog relay and migrates
	// the schema; HTTP serves the probes and /metrics only. /ready: as
	// RoleAll.
	RoleIngest Role = "ingest"
	// RoleAPI serves GET /users/… and creates no Kafka client at all. It
	// reads through store.OpenRead (Store.ReadDSN, or Store.DSN), never
	// migrates, and waits until the schema is at this binary's latest
	// migration (WaitForSchema), answering reads and /ready with 503
	// ("migrating") until then. /ready: PostgreSQL answers and the schema
	// is migrated.
	RoleAPI Role = "api"
)

// Validate reports whether r is a role, naming the --role setting. The
// zero Role is RoleAll.
func (r Role) Validate() error {
	switch r {
	case "", RoleAll, RoleIngest, RoleAPI:
		return nil
	}
	return fmt.Errorf("role %q: want all, ingest or api", string(r))
}

// ingests reports whether the role runs the pipeline (and so Kafka).
func (r Role) ingests() bool { return r != RoleAPI }

// openStore opens what the role needs of PostgreSQL: the api role a read
// pool only; the ingest role the write pool only (it serves no reads); all
// both, on one pool unless Store.ReadDSN names another DSN.
func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (*store.Store, error) {
	switch cfg.Role {
	case RoleAPI:
		return store.OpenRead(ctx, cfg.Store, logger)
	case RoleIngest:
		cfg.Store.ReadDSN = ""
	}
	return store.Open(ctx, cfg.Store, logger)
}

// WaitForSchema blocks until the schema, as st reads it, is at this
// binary's latest migration or past it (a newer binary migrated it), or
// until ctx ends. A schema that is missing, behind, or not yet granted to
// st's role, and an unreachable PostgreSQL, are waited for and logged once
// per change of state; any other error (bad credentials, a bug) is returned
// at once.
func WaitForSchema(ctx context.Context, st *store.Store, logger *slog.Logger) error {
	want := store.LatestMigration()
	return retry.Do(ctx, retry.Policy{Initial: 500 * time.Millisecond, Max: 2 * time.Second}, logger, "waiting for the schema to be migrated (this role does not migrate)", func() error {
		v, err := st.SchemaVersion(ctx)
		if err != nil {
			if store.Classify(err) != store.Unavailable {
				return retry.Permanent(err)
			}
			return err
		}
		if v < want {
			return fmt.Errorf("schema %s is at migration %d, this binary needs %d: run `streamjoin migrate` (and --grant-read for a read-only role)", st.Schema(), v, want)
		}
		return nil
	})
}
