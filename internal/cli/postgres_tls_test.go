package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// tlsPostgres starts a private PostgreSQL with ssl=on and a certificate for
// 127.0.0.1 signed by ca, which accepts only TLS connections from then on
// (pg_hba.conf: hostssl), and returns its port.
func tlsPostgres(t *testing.T, ca *testenv.CA) int {
	t.Helper()
	// Under /tmp and world-searchable, so that as root the postgres user can
	// reach the cluster directory.
	dir, err := os.MkdirTemp("", "streamjoin-pgtls-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv := ca.Issue(t, "postgres", "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresConfig{
		Dir: filepath.Join(dir, "data"), Fast: true,
		TLS: &devenv.PostgresTLS{CertPEM: srv.CertPEM, KeyPEM: srv.KeyPEM},
	}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	u, err := url.Parse(pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	if _, err := fmt.Sscan(u.Port(), &port); err != nil {
		t.Fatal(err)
	}
	// TLS only from now on: a test that passes cannot have fallen back to
	// plaintext.
	hba := filepath.Join(dir, "data", "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("hostssl all all 127.0.0.1/32 trust\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := pgx.Connect(ctx, pg.DSN) // sslmode=disable
		if err != nil {
			break
		}
		c.Close(ctx)
		if time.Now().After(deadline) {
			t.Fatal("plaintext connections still accepted 10s after pg_hba.conf allowed TLS only")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return port
}

// PostgreSQL over TLS with sslmode=verify-full, as a managed PostgreSQL is
// reached: the DSN's sslmode and sslrootcert are all it takes, through
// `streamjoin migrate` (the same store.Open that run uses). A wrong CA or a
// host the certificate does not name fails with the certificate problem,
// and the DSN's password appears nowhere in the output.
func TestPostgresVerifyFull(t *testing.T) {
	const pgSecret = "pgPa55-c0ffee-4e1b"
	ca := testenv.NewCA(t, "pg")
	other := testenv.NewCA(t, "other")
	port := tlsPostgres(t, ca)
	dsn := func(host, rootCert string) string {
		return fmt.Sprintf("postgres://postgres:%s@%s:%d/postgres?sslmode=verify-full&sslrootcert=%s", pgSecret, host, port, url.QueryEscape(rootCert))
	}

	good := dsn("127.0.0.1", ca.CertFile)
	code, stdout, stderr := runMain("migrate", "--postgres", good, "--schema", "tls_test")
	if code != 0 || !strings.Contains(stdout, "migration(s) applied") {
		t.Fatalf("migrate over verify-full = %d\n%s%s", code, stdout, stderr)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("pg_stat_ssl.ssl = %v (%v), want true", ssl, err)
	}

	for _, tt := range []struct {
		name, dsn, want string
	}{
		{"wrong CA", dsn("127.0.0.1", other.CertFile), "certificate signed by unknown authority"},
		{"host not in the certificate", dsn("localhost", ca.CertFile), "x509: certificate is not valid for any names, but wanted to match localhost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain("migrate", "--postgres", tt.dsn, "--schema", "tls_test")
			if code == 0 {
				t.Fatalf("migrate succeeded, want a certificate failure\n%s", stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q: want it to say %q", stderr, tt.want)
			}
			if strings.Contains(stdout+stderr, pgSecret) {
				t.Errorf("output shows the DSN's password:\n%s%s", stdout, stderr)
			}
		})
	}
}
