package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/devenv"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dev runs its private PostgreSQL on --pg-port, prints that DSN, and a
// second dev asking for the same port fails at once, naming the port and
// the flag.
func TestDevPostgresPort(t *testing.T) {
	t.Parallel()
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := func() string {
		// Under /tmp and world-searchable: as root, PostgreSQL runs as the
		// postgres user, which must reach it.
		dir, err := os.MkdirTemp("", "streamjoin-devtest-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRoot()
	root.SetArgs([]string{"dev", "--data-dir", dataDir(), "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--pg-port", strconv.Itoa(port), "--log-level", "error"})
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "streamjoin dev is up") {
		select {
		case err := <-done:
			t.Fatalf("dev ended before it was up: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("dev not up after 2 minutes:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if !strings.Contains(out.String(), dsn) {
		t.Errorf("dev's banner does not give the DSN %s:\n%s", dsn, out.String())
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to dev's PostgreSQL at --pg-port: %v", err)
	}
	conn.Close(ctx)

	code, _, stderr := runMain("dev", "--data-dir", dataDir(), "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--pg-port", strconv.Itoa(port))
	if code == 0 || !strings.Contains(stderr, "port "+strconv.Itoa(port)+" on 127.0.0.1 is in use") || !strings.Contains(stderr, "--pg-port [STREAMJOIN_PG_PORT]") {
		t.Errorf("a second dev on the same --pg-port = %d %q, want an error naming the port and the flag", code, stderr)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev stopped with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("dev still running a minute after its context ended")
	}
}

func TestDevPGPortDefault(t *testing.T) {
	t.Parallel()
	cmd, _, err := newRoot().Find([]string{"dev"})
	if err != nil {
		t.Fatal(err)
	}
	if f := cmd.Flags().Lookup("pg-port"); f == nil || f.DefValue != "54320" {
		t.Errorf("dev --pg-port default = %v, want 54320 (the README's DSN)", f)
	}
}
