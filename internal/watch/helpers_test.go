package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const testTopic = "user_events"

// newBroker starts kfake with the output topic (3 partitions) and returns a
// connector to it.
func newBroker(t testing.TB) (string, *kafka.Connector) {
	t.Helper()
	addr, _ := testenv.Kafka(t, kfake.SeedTopics(3, testTopic))
	conn, err := kafka.New(kafka.Config{Brokers: []string{addr}}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return addr, conn
}

// testConfig is a directory watcher with fast timings.
func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.Topic = testTopic
	cfg.Complete = CompleteRename
	cfg.RescanInterval = 200 * time.Millisecond
	cfg.PollInterval = 100 * time.Millisecond
	cfg.RetryBackoffMax = 200 * time.Millisecond
	cfg.ChunkRecords = 7
	cfg.CommitTimeout = 10 * time.Second
	return cfg
}

// running starts w.Run and returns a function that stops it and returns its
// error.
func running(t testing.TB, w *Watcher) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	stopped := false
	var err error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return within 30s of its context ending")
			}
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// records writes n NDJSON records of file name, each with a unique id, and
// returns them.
func ndjson(name string, n int) (string, []string) {
	var b strings.Builder
	var vals []string
	for i := range n {
		v := fmt.Sprintf(`{"id":"%s-%d","received_at":"2021-05-01 10:00:%02d"}`, name, i, i%60)
		vals = append(vals, v)
		b.WriteString(v + "\n")
	}
	return b.String(), vals
}

// writeRenamed writes content under a temporary name and renames it into
// dir as name, as CompleteRename asks of writers.
func writeRenamed(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// waitFile waits until path exists.
func waitFile(t testing.TB, path string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", path, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readTopic returns every record of topic a read_committed reader sees,
// up to the topic's last stable offsets.
func readTopic(t testing.TB, addr, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("listing %s: %v", topic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (left: %v)", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

// exactlyOnce compares the topic's values with want: each exactly once.
func exactlyOnce(t testing.TB, recs []*kgo.Record, want []string) {
	t.Helper()
	got := map[string]int{}
	for _, r := range recs {
		got[string(r.Value)]++
	}
	lost, dup := 0, 0
	for _, w := range want {
		switch n := got[w]; {
		case n == 0:
			lost++
			if lost <= 3 {
				t.Errorf("lost: %s", w)
			}
		case n > 1:
			dup++
			if dup <= 3 {
				t.Errorf("%d copies: %s", n, w)
			}
		}
		delete(got, w)
	}
	for v, n := range got {
		t.Errorf("unexpected record (%d copies): %s", n, v)
	}
	if lost+dup > 0 {
		t.Errorf("%d of %d records lost, %d duplicated", lost, len(want), dup)
	}
}

// manifestOf reads the manifest's committed entries of cfg's source.
func manifestOf(t testing.TB, conn *kafka.Connector, cfg Config) map[string]entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := readManifest(ctx, conn, cfg.ManifestTopic, cfg.source())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
