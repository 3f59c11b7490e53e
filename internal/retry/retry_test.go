package retry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var fast = Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond}

func TestDo(t *testing.T) {
	errDown := errors.New("connection refused")
	errBad := errors.New("syntax error")
	for _, tc := range []struct {
		name      string
		results   []error // what fn returns on each call; nil ends it
		wantCalls int
		wantErr   error
	}{
		{"first try", []error{nil}, 1, nil},
		{"transient then ok", []error{errDown, errDown, nil}, 3, nil},
		{"permanent at once", []error{Permanent(errBad)}, 1, errBad},
		{"permanent after transient", []error{errDown, Permanent(errBad)}, 2, errBad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := Do(context.Background(), fast, nil, "op", func() error {
				err := tc.results[calls]
				calls++
				return err
			})
			if calls != tc.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if perm := (*permanentError)(nil); errors.As(err, &perm) {
				t.Errorf("err %v still carries the permanent mark", err)
			}
		})
	}
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Do(ctx, fast, nil, "loading offsets", func() error {
		calls++
		if calls == 3 {
			cancel()
		}
		return errors.New("connection refused")
	})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "loading offsets: ") {
		t.Fatalf("err = %v, want 'loading offsets: context canceled'", err)
	}
	if calls != 3 {
		t.Fatalf("calls = %d after cancel at the third, want 3", calls)
	}
}

// The log changes only with the state: first failure, a new error, recovery.
func TestDoLogsOncePerStateChange(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	seq := []error{
		errors.New("refused"), errors.New("refused"), errors.New("refused"),
		errors.New("timeout"), errors.New("timeout"), nil,
	}
	calls := 0
	if err := Do(context.Background(), fast, logger, "op", func() error { calls++; return seq[calls-1] }); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d log lines for 5 failures with 2 distinct errors and a recovery, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"op failed; retrying", "different error", "succeeded after retrying"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
}

// Waits grow exponentially up to Max.
func TestDoBacksOff(t *testing.T) {
	p := Policy{Initial: 20 * time.Millisecond, Max: 40 * time.Millisecond}
	var at []time.Time
	err := Do(context.Background(), p, nil, "op", func() error {
		at = append(at, time.Now())
		if len(at) < 5 {
			return errors.New("down")
		}
		return nil
	})
	if err != nil || len(at) != 5 {
		t.Fatalf("Do = %v after %d attempts, want nil after 5", err, len(at))
	}
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		// ±50% jitter around min(20ms·2^(i-1), 40ms).
		if gap < 10*time.Millisecond {
			t.Errorf("wait %d = %v, below the 10ms floor of the policy", i, gap)
		}
		if gap > time.Second {
			t.Errorf("wait %d = %v, far above the 40ms cap", i, gap)
		}
	}
}
