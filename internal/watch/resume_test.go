package watch

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

// TestResumeAfterCrash: a predecessor committed the first 10 records of a
// file with their manifest entry, then died inside a transaction that had
// produced records 10-14 and an entry saying 15. The watcher must fence
// it (its transaction is aborted and can no longer commit), read the
// manifest read_committed, and resume at record 10: every record exactly
// once.
func TestResumeAfterCrash(t *testing.T) {
	t.Parallel()
	addr, conn := newBroker(t)
	dir := t.TempDir()
	cfg := testConfig(dir)
	content, want := ndjson("a", 30)
	if err := os.WriteFile(filepath.Join(dir, "a.json"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	cfg.Dir = abs
	ctx := context.Background()
	if err := ensureTopic(ctx, conn, cfg.ManifestTopic); err != nil {
		t.Fatal(err)
	}

	zombie, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(cfg.transactionalID()))
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	e := entry{Source: cfg.source(), Name: "a.json", Size: info.Size(), Version: strconv.FormatInt(info.ModTime().UnixNano(), 10), State: stateProducing}
	txn := func(from, to int64) {
		t.Helper()
		if err := zombie.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		e.Next = to
		recs := []*kgo.Record{{Topic: cfg.ManifestTopic, Key: manifestKey(e.Source, e.Name), Value: []byte(mustJSON(e))}}
		for _, v := range want[from:to] {
			recs = append(recs, &kgo.Record{Topic: testTopic, Value: []byte(v)})
		}
		if err := zombie.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txn(0, 10)
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	txn(10, 15) // left open: the process "died" here

	w, err := New(cfg, conn, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, w)
	waitFile(t, filepath.Join(dir, "done", "a.json"), 30*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the predecessor committed its open transaction after the watcher started: it was not fenced")
	}
	exactlyOnce(t, readTopic(t, addr, testTopic), want)
	if got := manifestOf(t, conn, cfg)["a.json"]; got.State != stateDone || got.Next != 30 {
		t.Errorf("manifest entry = %+v, want done at 30", got)
	}
}

// TestChangedAfterPartialFails: a file whose content changed after part of
// it was produced is not produced again from its start (that would
// duplicate the part) nor resumed (the records no longer line up): it
// fails whole, saying how many of its records are in.
func TestChangedAfterPartialFails(t *testing.T) {
	t.Parallel()
	addr, conn := newBroker(t)
	dir, _ := filepath.Abs(t.TempDir())
	cfg := testConfig(dir)
	ctx := context.Background()
	if err := ensureTopic(ctx, conn, cfg.ManifestTopic); err != nil {
		t.Fatal(err)
	}
	pred, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(cfg.transactionalID()))
	if err != nil {
		t.Fatal(err)
	}
	defer pred.Close()
	e := entry{Source: cfg.source(), Name: "a.json", Size: 5, Version: "1", Next: 4, State: stateProducing}
	if err := pred.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := pred.ProduceSync(ctx, &kgo.Record{Topic: cfg.ManifestTopic, Key: manifestKey(e.Source, e.Name), Value: []byte(mustJSON(e))}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := pred.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	content, _ := ndjson("a", 10)
	writeRenamed(t, dir, "a.json", content)

	w, err := New(cfg, conn, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, w)
	waitFile(t, filepath.Join(dir, "failed", "a.json.reason"), 30*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if recs := readTopic(t, addr, testTopic); len(recs) != 0 {
		t.Errorf("%d records produced from a changed file, want 0", len(recs))
	}
	reason, _ := os.ReadFile(filepath.Join(dir, "failed", "a.json.reason"))
	if !strings.Contains(string(reason), "changed after 4 of its records were produced") {
		t.Errorf("reason = %q", reason)
	}
}

// TestFencedWatcherStops: a second watch with the same transactional id
// fences the first; the first stops with an error at its next transaction
// rather than produce anything more.
func TestFencedWatcherStops(t *testing.T) {
	t.Parallel()
	addr, conn := newBroker(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	cfg1, cfg2 := testConfig(dir1), testConfig(dir2)
	cfg1.TransactionalID, cfg2.TransactionalID = "same-id", "same-id"
	w1, err := New(cfg1, conn, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w1.Run(ctx) }()
	one, _ := ndjson("one", 3)
	writeRenamed(t, dir1, "one.json", one)
	waitFile(t, filepath.Join(dir1, "done", "one.json"), 30*time.Second)

	w2, err := New(cfg2, conn, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop2 := running(t, w2)
	two, _ := ndjson("two", 3)
	writeRenamed(t, dir2, "two.json", two)
	waitFile(t, filepath.Join(dir2, "done", "two.json"), 30*time.Second) // w2 has claimed the id

	late, lateVals := ndjson("late", 3)
	writeRenamed(t, dir1, "late.json", late)
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "fenced") {
			t.Errorf("the fenced watcher's Run returned %v, want a fenced error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the fenced watcher kept running")
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	for _, r := range readTopic(t, addr, testTopic) {
		if string(r.Value) == lateVals[0] {
			t.Error("the fenced watcher produced a record")
		}
	}
}
