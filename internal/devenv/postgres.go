// Package devenv starts the infrastructure streamjoin needs on a laptop or in
// a test: an in-process Kafka-protocol broker (kfake) and a private
// PostgreSQL cluster run from the machine's own binaries.
//
// Nothing here is used by `streamjoin run`; it exists so that `streamjoin dev`
// and the tests need no setup.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresConfig configures a private PostgreSQL cluster.
type PostgresConfig struct {
	// Dir holds the cluster's data directory. It is created, and initdb is
	// run on first use. Required.
	Dir string
	// Port to listen on, on 127.0.0.1 only. 0 picks a free port. A port
	// in use fails the start at once, naming it.
	Port int
	// BinDir holds initdb and postgres. Empty: ask `pg_config --bindir`,
	// then look in /usr/lib/postgresql/*/bin, then on PATH.
	BinDir string
	// Fast trades durability for speed (fsync off): for tests only.
	Fast bool
	// TLS, if set, starts the server with ssl=on and this certificate.
	// Clients may still connect without TLS (the DSN field does).
	TLS *PostgresTLS
}

// PostgresTLS is a server certificate and its key, PEM. StartPostgres
// writes them into the data directory, readable by the server only.
type PostgresTLS struct {
	CertPEM, KeyPEM []byte
}

// Postgres is a running private cluster. Stop it when done.
type Postgres struct {
	// DSN connects to the "postgres" database as the superuser "postgres".
	DSN string

	cmd      *exec.Cmd
	logger   *slog.Logger
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// ErrNoPostgres means the PostgreSQL server binaries are not installed.
var ErrNoPostgres = errors.New("PostgreSQL server binaries (initdb, postgres) not found: install them with `apt-get install postgresql` (Debian/Ubuntu) or pass --postgres with a DSN of your own")

// FindBinDir locates the directory holding initdb and postgres.
func FindBinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(dirs) > 0 {
		for i := len(dirs) - 1; i >= 0; i-- { // newest version first
			if has(dirs[i]) {
				return dirs[i], nil
			}
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if dir := filepath.Dir(p); has(dir) {
			return dir, nil
		}
	}
	return "", ErrNoPostgres
}

// StartPostgres initializes cfg.Dir if needed, starts postgres on 127.0.0.1
// and waits until it accepts connections. When run as root it runs initdb and
// postgres as the "postgres" system user, which must be able to reach Dir.
// The server gets SIGTERM if this process dies.
func StartPostgres(ctx context.Context, cfg PostgresConfig, logger *slog.Logger) (*Postgres, error) {
	if cfg.Dir == "" {
		return nil, errors.New("postgres data dir is required")
	}
	port := cfg.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	} else if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err != nil {
		return nil, fmt.Errorf("postgres port %d on 127.0.0.1 is in use (another PostgreSQL, or another streamjoin dev?): %w", port, err)
	} else {
		l.Close()
	}
	bin := cfg.BinDir
	if bin == "" {
		var err error
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("postgres data dir: %w", err)
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating postgres data dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing %s to the postgres user: %w", dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		logger.Info("initializing private PostgreSQL cluster", "dir", dir)
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", dir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(out, 5))
		}
	}
	var tlsArgs []string
	if cfg.TLS != nil {
		if tlsArgs, err = writeTLS(dir, cfg.TLS, cred); err != nil {
			return nil, err
		}
	}
	args := []string{"-D", dir, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"}
	// Room for bulk upserts: fewer forced checkpoints, so fewer full-page
	// images in the WAL (see BENCHMARKS.md).
	args = append(args, "-c", "max_wal_size=4GB", "-c", "shared_buffers=256MB")
	if cfg.Fast {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	args = append(args, tlsArgs...)
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening postgres log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	p := &Postgres{
		DSN:    fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		cmd:    cmd,
		logger: logger,
		done:   make(chan struct{}),
	}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	if err := p.waitReady(ctx, 30*time.Second); err != nil {
		p.Stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("postgres did not start: %w: %s", err, lastLines(log, 5))
	}
	logger.Info("private PostgreSQL ready", "dsn", p.DSN, "dir", dir, "log", logPath)
	return p, nil
}

func (p *Postgres) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, p.DSN)
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("server exited: %v", p.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %s: %w", timeout, err)
		}
	}
}

// Stop shuts the server down (fast shutdown: SIGINT) and waits for it to
// exit, at most 30 seconds before it is killed. It is safe to call more than
// once.
func (p *Postgres) Stop() error {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.logger.Warn("postgres did not stop in 30s; killing it")
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	var exitErr *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exitErr) {
		return fmt.Errorf("stopping postgres: %w", p.waitErr)
	}
	return nil
}

// runAs returns the credential to run PostgreSQL with: nil normally, the
// "postgres" system user when running as root (initdb refuses root).
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: need a \"postgres\" system user to run it as (it comes with `apt-get install postgresql`): %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// PostgresReachable reports whether the postgres system user could use dir:
// every parent must be searchable by others when running as root.
func PostgresReachable(dir string) bool {
	if os.Geteuid() != 0 {
		return true
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeTLS writes the server's certificate and key into the data directory
// dir (mode 0600, owned by the user the server runs as, as PostgreSQL
// requires of a key) and returns the server arguments that turn TLS on.
func writeTLS(dir string, t *PostgresTLS, cred *syscall.Credential) ([]string, error) {
	for name, b := range map[string][]byte{"server.crt": t.CertPEM, "server.key": t.KeyPEM} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("writing postgres %s: %w", name, err)
		}
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("handing %s to the postgres user: %w", path, err)
			}
		}
	}
	// Relative paths are relative to the data directory.
	return []string{"-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"}, nil
}
