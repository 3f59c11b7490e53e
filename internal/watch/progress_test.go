package watch

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
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

// TestProgressLine: while records flow, a progress line says how many
// are in.
func TestProgressLine(t *testing.T) {
	t.Parallel()
	_, conn := newBroker(t)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.ProgressInterval = 50 * time.Millisecond
	var logs syncBuffer
	w, err := New(cfg, conn, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, w)
	a, _ := ndjson("a", 20)
	writeRenamed(t, dir, "a.json", a)
	waitFile(t, filepath.Join(dir, "done", "a.json"), 30*time.Second)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "records=20 "); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line with records=20 within 10s; logs:\n%s", logs.String())
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
