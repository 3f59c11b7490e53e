package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

type timeoutNetErr struct{}

func (timeoutNetErr) Error() string   { return "i/o timeout" }
func (timeoutNetErr) Timeout() bool   { return true }
func (timeoutNetErr) Temporary() bool { return true }

// TestClassify covers every branch of Classify with errors built in Go; the
// tests below check the same branches against what pgx really returns.
func TestClassify(t *testing.T) {
	t.Parallel()
	pg := func(code string) error {
		return fmt.Errorf("running: %w", &pgconn.PgError{Severity: "ERROR", Code: code})
	}
	for _, tt := range []struct {
		name string
		err  error
		want store.Class
	}{
		{"nil", nil, store.Permanent},
		{"fenced", fmt.Errorf("writing: %w", &store.FencedError{}), store.Fenced},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), store.Canceled},
		{"serialization failure", pg(pgerrcode.SerializationFailure), store.Conflict},
		{"deadlock", pg(pgerrcode.DeadlockDetected), store.Conflict},
		{"connection exception", pg(pgerrcode.ConnectionException), store.Unavailable},
		{"connection failure", pg(pgerrcode.ConnectionFailure), store.Unavailable},
		{"too many connections", pg(pgerrcode.TooManyConnections), store.Unavailable},
		{"disk full", pg(pgerrcode.DiskFull), store.Unavailable},
		{"admin shutdown", pg(pgerrcode.AdminShutdown), store.Unavailable},
		{"crash shutdown", pg(pgerrcode.CrashShutdown), store.Unavailable},
		{"cannot connect now", pg(pgerrcode.CannotConnectNow), store.Unavailable},
		{"query canceled", pg(pgerrcode.QueryCanceled), store.Unavailable},
		{"idle in transaction timeout", pg(pgerrcode.IdleInTransactionSessionTimeout), store.Unavailable},
		{"unique violation", pg(pgerrcode.UniqueViolation), store.Permanent},
		{"syntax error", pg(pgerrcode.SyntaxError), store.Permanent},
		{"undefined table", pg(pgerrcode.UndefinedTable), store.Permanent},
		{"bad password", pg(pgerrcode.InvalidPassword), store.Permanent},
		{"other operator intervention", pg(pgerrcode.OperatorIntervention), store.Permanent},
		// An answer from PostgreSQL decides even inside a transport-looking wrapper.
		{"connect error", &pgconn.ConnectError{}, store.Unavailable},
		{"PgError beside a net.Error", errors.Join(&net.OpError{Op: "read", Err: syscall.ECONNRESET}, &pgconn.PgError{Code: pgerrcode.UndefinedColumn}), store.Permanent},
		{"net.OpError refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, store.Unavailable},
		{"net timeout", fmt.Errorf("reading: %w", timeoutNetErr{}), store.Unavailable},
		{"dns", &net.DNSError{Err: "no such host", Name: "db", IsNotFound: true}, store.Unavailable},
		{"ECONNREFUSED bare", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), store.Unavailable},
		{"ECONNRESET bare", fmt.Errorf("read: %w", syscall.ECONNRESET), store.Unavailable},
		{"EOF", fmt.Errorf("receiving message: %w", io.EOF), store.Unavailable},
		{"unexpected EOF", fmt.Errorf("receiving message: %w", io.ErrUnexpectedEOF), store.Unavailable},
		{"closed pool", fmt.Errorf("acquiring: %w", puddle.ErrClosedPool), store.Unavailable},
		{"deadline", fmt.Errorf("waiting for the lookup: %w", context.DeadlineExceeded), store.Unavailable},
		{"plain error", errors.New("encoding user: year 10000"), store.Permanent},
		{"panic value", fmt.Errorf("user lookup panicked: %v", "runtime error: invalid memory address or nil pointer dereference"), store.Permanent},
		{"wrapped plain error", fmt.Errorf("writing batch: %w", errors.New("copying user_events: bad value")), store.Permanent},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), store.Unavailable},
	} {
		if got := store.Classify(tt.err); got != tt.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// sqlState returns the SQLSTATE in err's chain, or "" if PostgreSQL did not
// answer.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// scratch makes a schema of its own for t with a table t(id int, v int)
// holding rows 1 and 2, and returns two connections whose search_path is it.
func scratch(t *testing.T) (*pgx.Conn, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	schema := testenv.Schema(t)
	a, b := testenv.Conn(t), testenv.Conn(t)
	if _, err := a.Exec(ctx, "CREATE SCHEMA "+schema+"; CREATE TABLE "+schema+".t (id int PRIMARY KEY, v int); INSERT INTO "+schema+".t VALUES (1, 0), (2, 0)"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*pgx.Conn{a, b} {
		if _, err := c.Exec(ctx, "SET search_path TO "+schema); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func mustExec(t *testing.T, tx interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sql string) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// waitBlocked waits until the backend pid waits on a lock.
func waitBlocked(t *testing.T, pid uint32) {
	t.Helper()
	probe := testenv.Conn(t)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var blocked bool
		if err := probe.QueryRow(context.Background(), "SELECT cardinality(pg_blocking_pids($1)) > 0", int(pid)).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		if blocked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d never waited on a lock", pid)
		}
	}
}

// TestClassifySerializationFailure: two SERIALIZABLE transactions that each
// read what the other writes; the second to commit gets 40001, a Conflict.
func TestClassifySerializationFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := scratch(t)
	txs := make([]pgx.Tx, 2)
	for i, c := range []*pgx.Conn{a, b} {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		txs[i] = tx
	}
	mustExec(t, txs[0], "SELECT sum(v) FROM t")
	mustExec(t, txs[1], "SELECT sum(v) FROM t")
	mustExec(t, txs[0], "INSERT INTO t VALUES (3, 1)")
	mustExec(t, txs[1], "INSERT INTO t VALUES (4, 1)")
	if err := txs[0].Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err := txs[1].Commit(ctx)
	if sqlState(err) != pgerrcode.SerializationFailure || store.Classify(err) != store.Conflict {
		t.Fatalf("second commit: %v (SQLSTATE %q) classified %v; want 40001, conflict", err, sqlState(err), store.Classify(err))
	}
}

// TestClassifyDeadlock: two transactions lock rows 1 and 2 in opposite
// orders; PostgreSQL aborts one with 40P01, a Conflict.
func TestClassifyDeadlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := scratch(t)
	ta, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Rollback(ctx)
	tb, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Rollback(ctx)
	mustExec(t, ta, "UPDATE t SET v = 1 WHERE id = 1")
	mustExec(t, tb, "UPDATE t SET v = 1 WHERE id = 2")
	errA := make(chan error, 1)
	go func() {
		_, err := ta.Exec(ctx, "UPDATE t SET v = 2 WHERE id = 2")
		errA <- err
	}()
	waitBlocked(t, a.PgConn().PID())
	_, errB := tb.Exec(ctx, "UPDATE t SET v = 2 WHERE id = 1")
	if errB == nil {
		// PostgreSQL chose a; b got the lock once a was aborted.
		errB = <-errA
	} else {
		if err := tb.Rollback(ctx); err != nil { // lets a through
			t.Fatal(err)
		}
		if err := <-errA; err != nil {
			t.Fatalf("the survivor failed too: %v", err)
		}
	}
	if sqlState(errB) != pgerrcode.DeadlockDetected || store.Classify(errB) != store.Conflict {
		t.Fatalf("deadlock victim: %v (SQLSTATE %q) classified %v; want 40P01, conflict", errB, sqlState(errB), store.Classify(errB))
	}
}

// TestClassifyStatementTimeout: statement_timeout ends a statement with
// 57014, which is Unavailable (see classifySQLState).
func TestClassifyStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := testenv.Conn(t)
	mustExec(t, conn, "SET statement_timeout = '50ms'")
	_, err := conn.Exec(ctx, "SELECT pg_sleep(10)")
	if sqlState(err) != pgerrcode.QueryCanceled || store.Classify(err) != store.Unavailable {
		t.Fatalf("statement past statement_timeout: %v (SQLSTATE %q) classified %v; want 57014, unavailable", err, sqlState(err), store.Classify(err))
	}
}

// TestClassifyTerminatedBackend: pg_terminate_backend ends a session, in
// the middle of a statement and while it is idle. Whatever pgx returns for
// either (57P01 while a statement runs; a closed connection after) is
// Unavailable.
func TestClassifyTerminatedBackend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	killer := testenv.Conn(t)
	kill := func(pid uint32) {
		t.Helper()
		var ok bool
		if err := killer.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int(pid)).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
		}
	}

	busy := testenv.Conn(t)
	errc := make(chan error, 1)
	go func() {
		_, err := busy.Exec(ctx, "SELECT pg_sleep(30)")
		errc <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var active bool
		if err := killer.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active')", int(busy.PgConn().PID())).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sleeping statement never started")
		}
	}
	kill(busy.PgConn().PID())
	err := <-errc
	t.Logf("mid-statement: %T %v (SQLSTATE %q)", err, err, sqlState(err))
	if err == nil || store.Classify(err) != store.Unavailable {
		t.Errorf("statement of a terminated backend: %v classified %v, want unavailable", err, store.Classify(err))
	}
	_, err = busy.Exec(ctx, "SELECT 1")
	t.Logf("after: %T %v", err, err)
	if err == nil || store.Classify(err) != store.Unavailable {
		t.Errorf("statement on the closed connection: %v classified %v, want unavailable", err, store.Classify(err))
	}

	idle := testenv.Conn(t)
	kill(idle.PgConn().PID())
	_, err = idle.Exec(ctx, "SELECT 1")
	t.Logf("idle: %T %v (SQLSTATE %q)", err, err, sqlState(err))
	if err == nil || store.Classify(err) != store.Unavailable {
		t.Errorf("statement on a terminated idle backend: %v classified %v, want unavailable", err, store.Classify(err))
	}
}

// TestClassifyUnreachable: a port nobody listens on (one just closed) gives
// a refused connection, through pgx.Connect and through the store's pool;
// a closed pool is Unavailable too; a statement PostgreSQL rejects is
// Permanent.
func TestClassifyUnreachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	dsn := "postgres://x@" + addr + "/x?connect_timeout=5&sslmode=disable"
	_, err = pgx.Connect(ctx, dsn)
	if !errors.Is(err, syscall.ECONNREFUSED) || store.Classify(err) != store.Unavailable {
		t.Errorf("pgx.Connect to a closed port: %v classified %v, want ECONNREFUSED, unavailable", err, store.Classify(err))
	}
	st, err := store.Open(ctx, store.Config{DSN: dsn}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = st.Ping(ctx)
	if !errors.Is(err, syscall.ECONNREFUSED) || store.Classify(err) != store.Unavailable {
		t.Errorf("Store.Ping to a closed port: %v classified %v, want ECONNREFUSED, unavailable", err, store.Classify(err))
	}
	st.Close()

	live := testenv.Store(t)
	_, err = live.UsersByName(ctx, "x", 1)
	if err != nil {
		t.Fatal(err)
	}
	live.Close()
	err = live.Ping(ctx)
	if !errors.Is(err, puddle.ErrClosedPool) || store.Classify(err) != store.Unavailable {
		t.Errorf("Ping on a closed pool: %v classified %v, want puddle.ErrClosedPool, unavailable", err, store.Classify(err))
	}

	_, err = testenv.Conn(t).Exec(ctx, "SELECT * FROM no_such_table")
	if sqlState(err) != pgerrcode.UndefinedTable || store.Classify(err) != store.Permanent {
		t.Errorf("undefined table: %v classified %v, want 42P01, permanent", err, store.Classify(err))
	}
}
