// Package store is streamjoin's PostgreSQL layer: the embedded migrations,
// the exactly-once batch writer and the API's reads.
//
// A *Store owns a pgxpool.Pool. All methods are safe for concurrent use; the
// caller that opened a Store closes it, after every user of it has returned.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures the PostgreSQL connection and schema.
type Config struct {
	// DSN is a PostgreSQL URL or keyword/value connection string. Required.
	DSN string
	// ReadDSN, if set and not DSN, gives the API's reads (UsersByName,
	// UsersByNames, SchemaVersion) a second pool of MaxConns connections on
	// it, e.g. a read replica; see read.go. Default: DSN's pool.
	ReadDSN string
	// Schema holds every streamjoin table. It is created if missing.
	// Default "streamjoin".
	Schema string
	// MaxConns bounds the pool. Default 8.
	MaxConns int32
	// QueryTimeout bounds each API read. Default 2s.
	QueryTimeout time.Duration
	// IdleInTransactionTimeout makes PostgreSQL end a session that sits
	// inside a transaction this long without sending anything, releasing
	// its locks. streamjoin never waits on anything else inside a
	// transaction, so only a frozen or paused process trips it; without
	// it, such a process would block the member that took over its
	// partitions for as long as it stays frozen. Default 15s.
	IdleInTransactionTimeout time.Duration
	// Changelog makes every state write also write the profiles it changes
	// to the changelog outbox (UpsertStateChangelogTx)
	// for the relay in internal/changelog. Every writer of one schema must
	// agree on it. Default false.
	Changelog bool
	// Enriched makes every log write run the as-of join (EnrichTx) and
	// write its answers to the outbox, for the relay's enriched topic.
	// Every writer of one schema must agree on it. Default false.
	Enriched bool
	// EnrichedEager: see EnrichOptions.Eager. Default false (wait for the
	// organization watermark).
	EnrichedEager bool
	// AllowedLateness: see EnrichOptions.AllowedLateness and
	// ActivityOptions.AllowedLateness. Default 1h.
	AllowedLateness time.Duration
	// Activity makes every log write count the windowed organization
	// activity (ActivityTx), for the relay's activity topic. Every writer
	// of one schema must agree on it. Default false.
	Activity bool
	// Window is the activity windows' length (ActivityOptions.Window).
	// Every writer of one schema must agree on it. Default 1h.
	Window time.Duration
	// WindowRetention: final windows that ended this long before the user
	// watermark are deleted (FireWindows). Default 30 days.
	WindowRetention time.Duration
}

// Defaults for Config.
const (
	DefaultSchema       = "streamjoin"
	DefaultMaxConns     = 8
	DefaultQueryTimeout = 2 * time.Second
	// DefaultIdleInTransactionTimeout: see Config.IdleInTransactionTimeout.
	DefaultIdleInTransactionTimeout = 15 * time.Second
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.IdleInTransactionTimeout == 0 {
		c.IdleInTransactionTimeout = DefaultIdleInTransactionTimeout
	}
	if c.AllowedLateness == 0 {
		c.AllowedLateness = DefaultAllowedLateness
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.WindowRetention == 0 {
		c.WindowRetention = DefaultWindowRetention
	}
	return c
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate reports the first invalid setting, by its flag name.
func (c Config) Validate() error {
	if c.DSN == "" {
		return errors.New("postgres: a connection string is required")
	}
	if c.ReadDSN != "" {
		if _, err := pgxpool.ParseConfig(c.ReadDSN); err != nil {
			return fmt.Errorf("postgres-read: %w", err)
		}
	}
	if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if !schemaRE.MatchString(c.Schema) {
		return fmt.Errorf("schema %q: want a lower-case identifier matching %s", c.Schema, schemaRE)
	}
	if c.MaxConns < 1 {
		return fmt.Errorf("pg-max-conns %d: must be at least 1", c.MaxConns)
	}
	if c.QueryTimeout <= 0 {
		return fmt.Errorf("query-timeout %s: must be positive", c.QueryTimeout)
	}
	if c.IdleInTransactionTimeout < time.Second {
		return fmt.Errorf("pg-idle-in-transaction-timeout %s: must be at least 1s", c.IdleInTransactionTimeout)
	}
	if c.AllowedLateness < 0 {
		return fmt.Errorf("allowed-lateness %s: must not be negative", c.AllowedLateness)
	}
	// A Window of 0 (migrate and the other commands without --window) is
	// the default; any other is checked, whether or not the activity is on
	// yet, so that run's settings are checked as given.
	if c.Window != 0 && (c.Window < time.Second || c.Window%time.Second != 0) {
		return fmt.Errorf("window %s: must be whole seconds, at least 1s", c.Window)
	}
	if c.WindowRetention < 0 {
		return fmt.Errorf("window-retention %s: must not be negative", c.WindowRetention)
	}
	return nil
}

//go:embed queries/*.sql
var queryFS embed.FS

func query(name string) string {
	b, err := queryFS.ReadFile("queries/" + name + ".sql")
	if err != nil {
		panic("store: missing embedded query " + name)
	}
	return string(b)
}

// The state upsert's statements, exported for `streamjoin bench`'s floor
// (a2), which runs them on connections of its own: StageTablesSQL creates
// the session's temporary staging tables (a Store's pool runs it on every
// new connection), and UpsertUsersSQL and UpsertOrgsSQL apply what was
// COPYed into them (CopyStageUsers, CopyStageOrgs).
var (
	StageTablesSQL = sqlStageTables
	UpsertUsersSQL = sqlUpsertUsers
	UpsertOrgsSQL  = sqlUpsertOrgs
)

var (
	sqlStageTables  = query("stage_tables")
	sqlUpsertUsers  = query("upsert_users")
	sqlUpsertOrgs   = query("upsert_orgs")
	sqlAdvance      = query("advance_offsets")
	sqlClaimOffsets = query("claim_offsets")
	sqlLost         = query("lost_partitions")
	sqlUsersByName  = query("users_by_name")
	sqlUsersByNames = query("users_by_names")
)

// Store reads and writes streamjoin's tables.
type Store struct {
	pool   *pgxpool.Pool
	read   *pgxpool.Pool // the API's reads; pool unless ReadDSN names another
	cfg    Config
	logger *slog.Logger
	steps  []Step // run inside each WriteBatch; see WithSteps
	// enriched counts the committed as-of join's statistics (nil when
	// the store is not Enriched); shared by WithSteps' copies.
	enriched *enrichCounts
	// activity: the same for the windowed activity (nil when not
	// Activity).
	activity *activityCounts
}

// Open creates the pool; it does not wait for the database, so a process can
// start while PostgreSQL is still down. Close releases it.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := poolConfig(cfg, cfg.DSN)
	if err != nil {
		return nil, err
	}
	pcfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		// Staging tables are per session; create them once per connection.
		_, err := conn.Exec(ctx, sqlStageTables)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("creating postgres pool: %w", err)
	}
	st := &Store{pool: pool, read: pool, cfg: cfg, logger: logger}
	if cfg.Enriched {
		st.enriched = &enrichCounts{}
	}
	if cfg.Activity {
		st.activity = &activityCounts{}
	}
	if cfg.ReadDSN != "" && cfg.ReadDSN != cfg.DSN {
		if st.read, err = newReadPool(ctx, cfg, cfg.ReadDSN); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return st, nil
}

// poolConfig is the configuration every pool of cfg's shares, on dsn.
func poolConfig(cfg Config, dsn string) (*pgxpool.Config, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing postgres dsn: %w", err)
	}
	pcfg.MaxConns = cfg.MaxConns
	pcfg.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	pcfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(cfg.IdleInTransactionTimeout.Milliseconds(), 10)
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "streamjoin"
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return pcfg, nil
}

// Close closes the pools, waiting for acquired connections to be released.
func (s *Store) Close() {
	if s.read != s.pool {
		s.read.Close()
	}
	s.pool.Close()
}

// Schema returns the schema the tables live in.
func (s *Store) Schema() string { return s.cfg.Schema }

// Ping checks that PostgreSQL answers within the query timeout, on the
// read pool too when it is a second one.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pinging postgres: %w", err)
	}
	if s.read != s.pool {
		if err := s.read.Ping(ctx); err != nil {
			return fmt.Errorf("pinging postgres-read: %w", err)
		}
	}
	return nil
}

// Profile is one row of the user_profiles view.
type Profile struct {
	ID               string    `json:"id"`
	Username         string    `json:"username"`
	UserEmail        *string   `json:"user_email"`
	UserType         *string   `json:"user_type"`
	OrganizationName *string   `json:"organization_name"`
	OrganizationTier *string   `json:"organization_tier"`
	ReceivedAt       time.Time `json:"received_at"`
}

// UsersByName returns up to limit live users whose username is exactly name,
// ordered by id, each joined to its organization, from the read pool. The
// read is bounded by the configured query timeout.
func (s *Store) UsersByName(ctx context.Context, name string, limit int) ([]Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	rows, err := s.read.Query(ctx, sqlUsersByName, name, limit)
	if err != nil {
		return nil, fmt.Errorf("querying users by name: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanProfile)
	if err != nil {
		return nil, fmt.Errorf("reading users by name: %w", err)
	}
	return out, nil
}

// UsersByNames is UsersByName for several names in one statement and one
// snapshot: it returns, keyed by name, up to limit live users per name,
// ordered by id. Names without users have no key. names should hold no
// repeats.
func (s *Store) UsersByNames(ctx context.Context, names []string, limit int) (map[string][]Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	rows, err := s.read.Query(ctx, sqlUsersByNames, names, limit)
	if err != nil {
		return nil, fmt.Errorf("querying users by names: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]Profile, len(names))
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, fmt.Errorf("reading users by names: %w", err)
		}
		out[p.Username] = append(out[p.Username], p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading users by names: %w", err)
	}
	return out, nil
}

// scanProfile reads one row of users_by_name(s).sql.
func scanProfile(row pgx.CollectableRow) (Profile, error) {
	var p Profile
	err := row.Scan(&p.ID, &p.Username, &p.UserEmail, &p.UserType, &p.OrganizationName, &p.OrganizationTier, &p.ReceivedAt)
	p.ReceivedAt = p.ReceivedAt.UTC()
	return p, err
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
