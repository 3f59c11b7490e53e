package chaos_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

var flagWatchBytes = flag.Int64("chaos.watch-bytes", 64<<20, "size of the NDJSON file TestWatchBigFile streams through watch")

// TestWatchBigFile streams one large NDJSON file (-chaos.watch-bytes, 64
// MiB by default; 2 GiB for the figure in docs/watch.md) through the watch
// binary and requires its peak RSS to stay under a bound far below the
// file's size: the file is read twice as a stream and never held.
func TestWatchBigFile(t *testing.T) {
	t.Parallel()
	const rssLimit = 96 << 20
	started := time.Now()
	broker, _ := testenv.Kafka(t, kfake.SeedTopics(6, watchTopic))
	w := &watchWorld{t: t, broker: broker, dir: t.TempDir(), logDir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			w.dumpLogs()
		}
	})
	stage := filepath.Join(t.TempDir(), "big.json")
	records, size := writeBig(t, stage, *flagWatchBytes)
	p := w.start()
	if err := os.Rename(stage, filepath.Join(w.dir, "big.json")); err != nil {
		t.Fatal(err)
	}
	flowing := time.Now()
	w.good = []string{"big.json"}
	w.waitAllFinished(p, 30*time.Minute)
	took := time.Since(flowing)
	// VmHWM, the high-water mark of the process's own memory, read while it
	// lives. (Not the rusage wait returns: on Linux a child's ru_maxrss
	// starts from its parent's RSS at fork, and this test process can hold a
	// gigabyte by then: it read 1,081 MiB for a 64 MiB file.)
	peak, err := vmHWM(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p.stop(t, 20*time.Second)
	if _, err := os.Stat(filepath.Join(w.dir, "done", "big.json")); err != nil {
		t.Fatalf("big.json is not in done/: %v", err)
	}
	fig := map[string]any{
		"test": "watch-big-file", "date": time.Now().UTC().Format(time.RFC3339),
		"records_produced": records, "file_mib": size >> 20, "peak_rss_mib": peak >> 20,
		"records_per_second": int(float64(records) / took.Seconds()), "duration_seconds": int(time.Since(started).Seconds()),
	}
	report(t, fig)
	if peak > rssLimit {
		t.Errorf("watch's peak RSS was %d MiB for a %d MiB file, want under %d MiB", peak>>20, size>>20, rssLimit>>20)
	}
}

// writeBig writes NDJSON user events to path until it holds at least size
// bytes, and returns the records and bytes written.
func writeBig(t *testing.T, path string, size int64) (int, int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var n int
	var written int64
	for written < size {
		k, err := fmt.Fprintf(bw, `{"id":"big-%d","event_type":"User Created","username":"user%d","user_email":"u%d@example.org","user_type":"Member","organization_name":"org%d","received_at":"2021-05-01 10:00:00"}`+"\n", n, n, n, n%1000)
		if err != nil {
			t.Fatal(err)
		}
		written += int64(k)
		n++
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return n, written
}

// vmHWM reads a live process's peak resident set size, in bytes.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
