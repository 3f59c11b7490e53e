package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/store"
)

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// panickingUsers is the real store, except that a lookup of "boom" panics.
type panickingUsers struct{ api.Users }

// TestPanicIsA500: a panic in a lookup, and one in a handler (here /ready's
// joined check, panicking with a value that looks like a network outage),
// answer 500 problem+json, are logged with the panic, and leave the server
// serving.
func TestPanicIsA500(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	joined := func() bool { panic(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}) }
	ts := setupWith(t, setupOpts{wrapUsers: func(u api.Users) api.Users { return panickingUsers{u} }, joined: joined, logger: logger})

	checkProblem(t, "GET", ts.URL+"/users/boom", http.StatusInternalServerError)
	checkProblem(t, "GET", ts.URL+"/ready", http.StatusInternalServerError)
	for _, want := range []string{
		"status=500", "user lookup panicked: assignment to entry in nil map",
		"handler panicked: dial tcp: connection refused",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if code, _, body := get(t, ts.URL+"/users/Snake"); code != http.StatusOK {
		t.Errorf("after the panics: GET /users/Snake = %d %s, want 200", code, body)
	}
}

func (p panickingUsers) UsersByNames(ctx context.Context, names []string, limit int) (map[string][]store.Profile, error) {
	if slices.Contains(names, "boom") {
		var m map[string]int
		m["boom"]++ // a nil map write: a bug
	}
	return p.Users.UsersByNames(ctx, names, limit)
}
