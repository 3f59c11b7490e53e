package cli

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// runSettings reads run's settings as withConfig does.
func runSettings(t *testing.T, args ...string) (*app.Config, error) {
	t.Helper()
	var cfg app.Config
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	appFlags(fs, &cfg, ":8080")
	runFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	from, err := applyConfig(fs, "")
	if err != nil {
		return nil, err
	}
	return &cfg, nameSettings(fs, from, cfg.Validate())
}

// TestRoleAndReadSettings: --role and --postgres-read bind to their
// variables like every setting; a bad role fails at start naming --role,
// its variable and the value's source; the api role needs no --brokers,
// and with --postgres-read alone no --postgres either.
//
// Not parallel: it sets environment variables.
func TestRoleAndReadSettings(t *testing.T) {
	t.Setenv("STREAMJOIN_ROLE", "api")
	t.Setenv("STREAMJOIN_POSTGRES_READ", "postgres://reader@replica/db")
	cfg, err := runSettings(t)
	if err != nil {
		t.Fatalf("api role with only STREAMJOIN_POSTGRES_READ: %v", err)
	}
	if cfg.Role != app.RoleAPI || cfg.Store.ReadDSN != "postgres://reader@replica/db" {
		t.Errorf("role %q, read DSN %q; want api and the variable's DSN", cfg.Role, cfg.Store.ReadDSN)
	}
	if cfg, err := runSettings(t, "--role", "ingest", "--postgres", "postgres://u@h/db", "--brokers", "k:9092"); err != nil || cfg.Role != app.RoleIngest {
		t.Errorf("--role ingest: %v, %q", err, cfg.Role)
	}

	t.Setenv("STREAMJOIN_ROLE", "reader")
	code, _, stderr := runMain("run", "--postgres", "postgres://u@127.0.0.1:1/db", "--brokers", "127.0.0.1:1")
	for _, want := range []string{"--role [STREAMJOIN_ROLE]", `role "reader": want all, ingest or api`, "from STREAMJOIN_ROLE"} {
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("bad STREAMJOIN_ROLE: exit %d, stderr %q; want it to name %q", code, stderr, want)
		}
	}
	t.Setenv("STREAMJOIN_ROLE", "")
	os.Unsetenv("STREAMJOIN_ROLE")
	os.Unsetenv("STREAMJOIN_POSTGRES_READ")
	const secret = "s3cr3t-read"
	code, stdout, stderr := runMain("run", "--role", "api", "--postgres-read", "postgres://u:"+secret+"@127.0.0.1:notaport/db")
	if code == 0 || !strings.Contains(stderr, "--postgres-read [STREAMJOIN_POSTGRES_READ]") || strings.Contains(stdout+stderr, secret) {
		t.Errorf("malformed --postgres-read: exit %d, stderr %q; want an error naming --postgres-read, without the password", code, stderr)
	}
}

// TestMigrateGrantRead runs `streamjoin migrate --grant-read ROLE` on a
// private cluster: the role can then read the user_profiles view and
// schema_migrations, and nothing else: writing the state or the offsets
// and reading the raw logs are insufficient_privilege (42501). A role that
// does not exist fails the command.
func TestMigrateGrantRead(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "streamjoin-pggrant-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresConfig{Dir: filepath.Join(dir, "data"), Fast: true}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	admin, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE ROLE "API reader" LOGIN`); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runMain("migrate", "--postgres", pg.DSN, "--schema", "app", "--grant-read", "API reader")
	if code != 0 || !strings.Contains(stdout, `role "API reader" may read`) {
		t.Fatalf("migrate --grant-read: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if code, _, stderr := runMain("migrate", "--postgres", pg.DSN, "--schema", "app", "--grant-read", "nobody"); code == 0 || !strings.Contains(stderr, `"nobody"`) {
		t.Errorf("--grant-read to a missing role: exit %d, stderr %q; want a failure naming it", code, stderr)
	}

	u, err := url.Parse(pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("API reader")
	reader, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	for _, stmt := range []string{"SELECT count(*) FROM app.user_profiles", "SELECT max(version) FROM app.schema_migrations", "SELECT count(*) FROM app.users", "SELECT count(*) FROM app.user_events"} {
		if _, err := reader.Exec(ctx, stmt); err != nil {
			t.Errorf("as the granted role: %s: %v", stmt, err)
		}
	}
	for _, stmt := range []string{
		"INSERT INTO app.users (id, username, received_at, deleted, event_type, source_partition, source_offset) VALUES ('x', 'x', now(), false, 'User Created', 0, 0)",
		"UPDATE app.users SET username = 'x'",
		"INSERT INTO app.kafka_offsets (topic, partition, next_offset) VALUES ('x', 0, 0)",
		"SELECT * FROM app.org_events",
		"SELECT * FROM app.kafka_offsets",
	} {
		_, err := reader.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.InsufficientPrivilege {
			t.Errorf("as the granted role: %.60s: %v, want SQLSTATE 42501", stmt, err)
		}
	}
}
