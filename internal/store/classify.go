package store

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Classify sorts err into a Class. It decides in this order:
//
//   - a *FencedError is Fenced, and context.Canceled is Canceled;
//   - an answer from PostgreSQL (a *pgconn.PgError anywhere in the chain) is
//     sorted by its SQLSTATE alone (see classifySQLState);
//   - a transport failure, recognized positively, is Unavailable: a
//     net.Error (refused, reset, timed out, unresolvable host), pgconn's
//     timeouts (pgconn.Timeout) and errors pgconn marks safe to retry
//     (pgconn.SafeToRetry: nothing was sent), a *pgconn.ConnectError, a
//     closed pool or connection, io.EOF and io.ErrUnexpectedEOF (the
//     server hung up), ECONNREFUSED, ECONNRESET and EPIPE, and
//     context.DeadlineExceeded;
//   - everything else is Permanent: a bug, a panic turned into an error, an
//     encoding failure, a migration that fails for a reason of its own.
//
// context.DeadlineExceeded is Unavailable because in streamjoin a deadline
// is always a bound put on waiting for the database (the API's query and
// lookup timeouts, the pool's connect timeout): it passing means the
// database was too slow or too far, and trying again later is right. A
// caller whose own context ended sees ctx.Err() and stops retrying anyway.
//
// A closed pool is Unavailable: it happens only while the process shuts
// down, and then the caller's context ends too; to an API request it is a
// 503 like any other outage.
func Classify(err error) Class {
	var fe *FencedError
	switch {
	case err == nil:
		return Permanent
	case errors.As(err, &fe):
		return Fenced
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	// An answer from PostgreSQL decides, even inside a ConnectError (a
	// wrong password is 28P01, Permanent) or a net.Error-like wrapper.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return classifySQLState(pgErr.Code)
	}
	if isTransport(err) {
		return Unavailable
	}
	return Permanent
}

// classifySQLState sorts a SQLSTATE:
//
//   - 40001 serialization_failure and 40P01 deadlock_detected are Conflict:
//     the transaction lost a race; run it again at once.
//   - class 08 (connection exception), class 53 (insufficient resources:
//     disk full, out of memory, too many connections), 57P01 admin_shutdown,
//     57P02 crash_shutdown, 57P03 cannot_connect_now (starting up or in
//     recovery), 57P05 idle_session_timeout and 25P03
//     idle_in_transaction_session_timeout (the server ended the session,
//     not the statement; a new session will do) are Unavailable.
//   - 57014 query_canceled is Unavailable too. PostgreSQL answers it when
//     statement_timeout passes, or when a cancel request arrives (pgx sends
//     one when a context's deadline passes mid-query, and an operator's
//     pg_cancel_backend does). Nothing in the statement is wrong: the
//     database was too slow for the bound put on it, which is what 503 and
//     a retry after a backoff are for. (A statement that can never finish
//     in time would be retried with backoff forever; its log says why.)
//   - every other SQLSTATE (constraint violations, syntax errors, bad
//     credentials, undefined tables, ...) is Permanent.
func classifySQLState(code string) Class {
	switch code {
	case pgerrcode.SerializationFailure, pgerrcode.DeadlockDetected:
		return Conflict
	case pgerrcode.AdminShutdown, pgerrcode.CrashShutdown, pgerrcode.CannotConnectNow,
		pgerrcode.IdleSessionTimeout, pgerrcode.IdleInTransactionSessionTimeout,
		pgerrcode.QueryCanceled:
		return Unavailable
	}
	if pgerrcode.IsConnectionException(code) || pgerrcode.IsInsufficientResources(code) {
		return Unavailable
	}
	return Permanent
}

// isTransport reports whether err says the database could not be reached or
// the connection broke, as opposed to anything about the work itself.
func isTransport(err error) bool {
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &netErr),
		errors.As(err, &connectErr),
		pgconn.Timeout(err),
		pgconn.SafeToRetry(err),
		errors.Is(err, puddle.ErrClosedPool),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}
