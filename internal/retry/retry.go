// Package retry is streamjoin's one retry policy: capped exponential backoff
// with jitter (cenkalti/backoff/v5), no limit on attempts or elapsed time, a
// way to mark errors that retrying cannot fix, and logs that change only when
// the state does: one line when an operation starts failing, one when its
// error changes, and one when it recovers, never one per attempt.
package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is how long to wait between attempts. The zero value takes the
// defaults (WithDefaults).
type Policy struct {
	// Initial is the first wait. Default 100ms.
	Initial time.Duration
	// Max caps each wait. Default 10s.
	Max time.Duration
}

// Defaults.
const (
	DefaultInitial = 100 * time.Millisecond
	DefaultMax     = 10 * time.Second
)

// WithDefaults returns p with zero fields set to their defaults.
func (p Policy) WithDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Initial > p.Max {
		p.Initial = p.Max
	}
	return p
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix: Do returns it at once
// (unwrapped). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// Do runs fn until it returns nil, returns an error marked Permanent, or ctx
// ends. It blocks the calling goroutine for as long. what names the operation
// in logs and in the error returned when ctx ends ("what: context
// canceled"); a permanent error is returned as fn returned it, without the
// mark. logger may be nil.
func Do(ctx context.Context, p Policy, logger *slog.Logger, what string, fn func() error) error {
	p = p.WithDefaults()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	b.MaxInterval = p.Max
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	st := state{log: logger, what: what, start: time.Now()}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := fn()
		var perm *permanentError
		if errors.As(err, &perm) {
			return struct{}{}, backoff.Permanent(perm.err)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(st.failed),
	)
	switch {
	case err == nil:
		st.recovered()
		return nil
	case ctx.Err() != nil && errors.Is(err, context.Cause(ctx)):
		// backoff returns the context's cause bare once ctx has ended.
		return fmt.Errorf("%s: %w", what, err)
	}
	return err
}

// state logs an operation's retries once per change of state.
type state struct {
	log      *slog.Logger
	what     string
	start    time.Time
	attempts int
	lastErr  string
}

func (s *state) failed(err error, next time.Duration) {
	s.attempts++
	msg := err.Error()
	if s.log == nil || msg == s.lastErr {
		return
	}
	if s.lastErr == "" {
		s.log.Warn(s.what+" failed; retrying until it succeeds", "retry_in", next.Round(time.Millisecond), "err", err)
	} else {
		s.log.Warn(s.what+" still failing, with a different error", "attempts", s.attempts, "retry_in", next.Round(time.Millisecond), "err", err)
	}
	s.lastErr = msg
}

func (s *state) recovered() {
	if s.log == nil || s.attempts == 0 {
		return
	}
	s.log.Info(s.what+" succeeded after retrying", "attempts", s.attempts+1, "took", time.Since(s.start).Round(time.Millisecond))
}
