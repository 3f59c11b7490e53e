package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

// watchFigures are what TestWatchKills measured: one line of the
// -chaos.report file.
type watchFigures struct {
	Test              string `json:"test"`
	Date              string `json:"date"`
	Records           int    `json:"records_produced"`
	Files             int    `json:"files"`
	FilesFailed       int    `json:"files_failed"`
	Kills             int    `json:"sigkills"`
	KillsInCommit     int    `json:"sigkills_inside_commit"`
	Restarts          int    `json:"restarts"`
	FilesResumed      int    `json:"files_resumed"`
	RecordsLost       int    `json:"records_lost"`
	RecordsDuplicated int    `json:"records_duplicated"`
	RecordsUnexpected int    `json:"records_unexpected"`
	DurationSeconds   int    `json:"duration_seconds"`
}

// watchWorld is one TestWatchKills run: a broker, the watched directory,
// and the files written into it so far.
type watchWorld struct {
	t      *testing.T
	broker string
	dir    string
	logDir string
	nprocs int

	mu     sync.Mutex
	want   []string // every record of every good file
	good   []string // good file names
	bad    []string // names of files that are not JSON
	wrote  int      // files written
	closed bool
}

const watchTopic = "user_events"

// TestWatchKills runs `streamjoin watch` on a directory while files arrive
// (NDJSON and arrays, a few not JSON at all), kills it with SIGKILL again
// and again (half of the kills while a transaction is open, confirmed by
// the broker), restarts it each time, and then compares every record of the
// topic (read_committed) with the files: each record exactly once, nothing
// of a bad file, every file in done/ or failed/.
func TestWatchKills(t *testing.T) {
	t.Parallel()
	started := time.Now()
	broker, _ := testenv.Kafka(t, kfake.SeedTopics(6, watchTopic))
	w := &watchWorld{t: t, broker: broker, dir: t.TempDir(), logDir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			w.dumpLogs()
		}
	})
	total, kills := *flagEvents/2, *flagKills
	r := newRand(t)
	f := watchFigures{Test: "watch-kills"}

	// Files arrive over the kill phase (about 1.5s a kill).
	writerDone := make(chan error, 1)
	seed := r.Uint64() // r is this goroutine's
	go func() { writerDone <- w.writeFiles(total, time.Duration(kills)*1500*time.Millisecond, seed) }()

	var procs []*proc
	for k := 0; k < kills; k++ {
		p := w.start()
		procs = append(procs, p)
		time.Sleep(time.Duration(200+r.IntN(800)) * time.Millisecond)
		if !p.alive() {
			t.Fatalf("kill %d: watch exited on its own: %v", k, p.err)
		}
		if k%2 == 0 && w.freezeInTxn(p, 200) {
			f.KillsInCommit++
		}
		p.kill(t)
		f.Kills++
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	p := w.start()
	procs = append(procs, p)
	f.Restarts = kills + 1
	w.waitAllFinished(p, 5*time.Minute)
	p.stop(t, 20*time.Second)

	for _, p := range procs {
		f.FilesResumed += p.logCount("resuming file")
	}
	w.check(&f)
	f.Date = time.Now().UTC().Format(time.RFC3339)
	f.DurationSeconds = int(time.Since(started).Seconds())
	report(t, f)
	if f.KillsInCommit == 0 && kills >= 4 {
		t.Errorf("no kill landed inside a transaction in %d tries; the test did not exercise it", kills/2)
	}
}

// start runs `streamjoin watch` on the directory.
func (w *watchWorld) start() *proc {
	w.t.Helper()
	w.nprocs++
	p := &proc{name: fmt.Sprintf("watch-%02d", w.nprocs), done: make(chan struct{})}
	p.cmd = exec.Command(binary(w.t), "watch",
		"--brokers", w.broker, "--dir", w.dir, "--topic", watchTopic, "--key", "id",
		"--complete", "rename", "--rescan-interval", "500ms", "--chunk-records", "500",
		"--retry-backoff-max", "500ms", "--progress-interval", "1s", "--log-format", "json")
	p.log = filepath.Join(w.logDir, p.name+".log")
	out, err := os.Create(p.log)
	if err != nil {
		w.t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		out.Close()
		close(p.done)
	}()
	w.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// writeFiles writes files of 1 to 6,000 records (NDJSON or a JSON array)
// into the directory, under a .tmp name renamed into place, until total
// records are written, spread over about d; one file in ten is not JSON.
func (w *watchWorld) writeFiles(total int, d time.Duration, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed>>1))
	written := 0
	files := max(1, total/3000)
	pause := d / time.Duration(files+files/10+1)
	for i := 0; written < total; i++ {
		name := fmt.Sprintf("f%04d.json", i)
		var body string
		var vals []string
		if i%10 == 9 {
			body = fmt.Sprintf("{\"id\":\"%s-0\"}\nid,name\n1,x\n", name) // not JSON after its first line
		} else {
			n := min(1+r.IntN(6000), total-written)
			for j := range n {
				vals = append(vals, fmt.Sprintf(`{"id":"%s-%d","event_type":"User Created","received_at":"2021-05-01 10:00:00"}`, name, j))
			}
			if r.IntN(2) == 0 {
				body = strings.Join(vals, "\n") + "\n"
			} else {
				body = "[\n" + strings.Join(vals, ",\n") + "\n]\n"
			}
			written += n
		}
		tmp := filepath.Join(w.dir, name+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(w.dir, name)); err != nil {
			return err
		}
		w.mu.Lock()
		if vals == nil {
			w.bad = append(w.bad, name)
		} else {
			w.good = append(w.good, name)
			w.want = append(w.want, vals...)
		}
		w.wrote++
		w.mu.Unlock()
		time.Sleep(pause)
	}
	return nil
}

// freezeInTxn stops p (SIGSTOP) at random moments until the broker shows
// a transaction of it open (the topic's end is past its last stable
// offset), up to tries times, and leaves p stopped either way; it reports
// whether one was open.
func (w *watchWorld) freezeInTxn(p *proc, tries int) bool {
	w.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.broker))
	if err != nil {
		w.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for range tries {
		p.signal(w.t, syscall.SIGSTOP)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.ListEndOffsets(ctx, watchTopic)
		stable, err2 := adm.ListCommittedOffsets(ctx, watchTopic)
		cancel()
		if err1 != nil || err2 != nil {
			w.t.Fatalf("listing offsets: %v, %v", err1, err2)
		}
		open := false
		ends.Each(func(o kadm.ListedOffset) {
			if s, ok := stable.Lookup(o.Topic, o.Partition); ok && o.Offset > s.Offset {
				open = true
			}
		})
		if open {
			return true
		}
		p.signal(w.t, syscall.SIGCONT)
		time.Sleep(time.Duration(1+rand.IntN(20)) * time.Millisecond)
	}
	p.signal(w.t, syscall.SIGSTOP)
	return false
}

// waitAllFinished waits until every file written is in done/ or failed/.
func (w *watchWorld) waitAllFinished(p *proc, limit time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	// First, p is up (its signal handling too): every file may already be
	// done by its predecessors, and a SIGTERM right after exec kills.
	for p.logCount(`"msg":"watching"`) == 0 {
		if !p.alive() {
			w.t.Fatalf("%s exited before it started watching: %v", p.name, p.err)
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s did not start watching within %s", p.name, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		left := 0
		w.mu.Lock()
		for _, name := range append(append([]string{}, w.good...), w.bad...) {
			if _, err := os.Stat(filepath.Join(w.dir, name)); err == nil {
				left++
			}
		}
		w.mu.Unlock()
		if left == 0 {
			return
		}
		if !p.alive() {
			w.t.Fatalf("%s exited with %d files left: %v", p.name, left, p.err)
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%d files still not taken after %s", left, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check compares the topic with the files and fills the figures.
func (w *watchWorld) check(f *watchFigures) {
	w.t.Helper()
	f.Records, f.Files, f.FilesFailed = len(w.want), len(w.good)+len(w.bad), len(w.bad)
	for _, name := range w.good {
		if _, err := os.Stat(filepath.Join(w.dir, "done", name)); err != nil {
			w.t.Errorf("%s is not in done/: %v", name, err)
		}
	}
	for _, name := range w.bad {
		if _, err := os.Stat(filepath.Join(w.dir, "failed", name+".reason")); err != nil {
			w.t.Errorf("%s has no reason in failed/: %v", name, err)
		}
	}
	got := map[string]int{}
	for _, r := range w.readCommitted() {
		got[string(r.Value)]++
		var v struct{ ID string }
		if err := json.Unmarshal(r.Value, &v); err != nil || string(r.Key) != v.ID {
			w.t.Errorf("record %s has key %q, want its id", r.Value, r.Key)
		}
	}
	for _, v := range w.want {
		switch n := got[v]; {
		case n == 0:
			if f.RecordsLost < 3 {
				w.t.Errorf("lost: %s", v)
			}
			f.RecordsLost++
		case n > 1:
			if f.RecordsDuplicated < 3 {
				w.t.Errorf("%d copies: %s", n, v)
			}
			f.RecordsDuplicated++
		}
		delete(got, v)
	}
	for v, n := range got {
		if f.RecordsUnexpected < 3 {
			w.t.Errorf("not from a good file (%d copies): %s", n, v)
		}
		f.RecordsUnexpected += n
	}
}

// readCommitted reads every record of the topic as a read_committed
// consumer sees it, to the last stable offsets.
func (w *watchWorld) readCommitted() []*kgo.Record {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.broker), kgo.ConsumeTopics(watchTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		w.t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, watchTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		w.t.Fatal(err)
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
			w.t.Fatalf("reading %s: %v (left %v)", watchTopic, ctx.Err(), left)
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

func (w *watchWorld) dumpLogs() {
	entries, _ := os.ReadDir(w.logDir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(w.logDir, e.Name()))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		w.t.Logf("--- last lines of %s:\n%s", e.Name(), strings.Join(lines, "\n"))
	}
}
