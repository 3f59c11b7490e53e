package watch

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/produce"
)

// The benchmarks' work: benchFiles NDJSON files of benchRecords records.
const (
	benchFiles   = 4
	benchRecords = 25_000
)

// BenchmarkWatchFiles measures watch end to end against kfake: files renamed
// into the directory until all are committed and moved to done/, with
// default chunks (10,000 records a transaction). Compare
// BenchmarkTransactionsBaseline, the same records in the same transactions
// without files, validation or manifest.
func BenchmarkWatchFiles(b *testing.B) {
	_, conn := newBroker(b)
	contents := make([]string, benchFiles)
	for i := range contents {
		contents[i], _ = ndjson(string(rune('a'+i)), benchRecords)
	}
	records := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, stage := b.TempDir(), b.TempDir()
		for j, c := range contents {
			if err := os.WriteFile(filepath.Join(stage, name(j)), []byte(c), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		cfg := DefaultConfig()
		cfg.Dir, cfg.Topic, cfg.KeyField, cfg.Complete = dir, testTopic, "id", CompleteRename
		w, err := New(cfg, conn, nil)
		if err != nil {
			b.Fatal(err)
		}
		stop := running(b, w)
		b.StartTimer()
		for j := range contents {
			if err := os.Rename(filepath.Join(stage, name(j)), filepath.Join(dir, name(j))); err != nil {
				b.Fatal(err)
			}
		}
		for j := range contents {
			waitFile(b, filepath.Join(dir, "done", name(j)), 5*time.Minute)
		}
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		records += benchFiles * benchRecords
		b.StartTimer()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

func name(i int) string { return string(rune('a'+i)) + ".json" }

// BenchmarkTransactionsBaseline is the leanest same work: the benchmark's
// records, already in memory, keyed the same way, produced by one plain
// transactional franz-go client in transactions of the same size.
func BenchmarkTransactionsBaseline(b *testing.B) {
	_, conn := newBroker(b)
	var all []json.RawMessage
	for i := range benchFiles {
		c, _ := ndjson(string(rune('a'+i)), benchRecords)
		for _, line := range strings.Split(strings.TrimSpace(c), "\n") {
			all = append(all, json.RawMessage(line))
		}
	}
	chunk := DefaultConfig().ChunkRecords
	ctx := context.Background()
	records := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cl, err := conn.NewClient("baseline", kgo.TransactionalID("baseline"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for from := 0; from < len(all); from += chunk {
			if err := cl.BeginTransaction(); err != nil {
				b.Fatal(err)
			}
			if _, err := produce.Records(ctx, cl, testTopic, all[from:min(from+chunk, len(all))], "id", nil); err != nil {
				b.Fatal(err)
			}
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cl.Close()
		records += len(all)
		b.StartTimer()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
