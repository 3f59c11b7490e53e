package chaos_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// proc is one streamjoin process.
type proc struct {
	name string
	cmd  *exec.Cmd
	base string // http://host:port of its API
	log  string
	done chan struct{}
	err  error
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs `streamjoin run` against the harness's broker and schema, with a
// short session timeout so that a killed member's partitions move on fast.
func (h *harness) start(extra ...string) *proc {
	h.t.Helper()
	h.nprocs++
	p := &proc{name: fmt.Sprintf("proc-%02d", h.nprocs), done: make(chan struct{})}
	port := freePort(h.t)
	p.base = "http://127.0.0.1:" + strconv.Itoa(port)
	sep := "?"
	if strings.Contains(h.pgDSN, "?") {
		sep = "&"
	}
	args := []string{"run",
		"--brokers", h.broker,
		"--postgres", h.pgDSN + sep + "application_name=" + h.appName() + "-" + p.name,
		"--schema", h.schema,
		"--http-addr", p.base[len("http://"):],
		"--session-timeout", h.session.String(),
		"--rebalance-timeout", "5s",
		"--pg-idle-in-transaction-timeout", "2s",
		"--retry-backoff-max", "1s",
		"--max-poll-records", "2000",
		// Idle organization partitions release the enriched events soon
		// after the stream ends (enriched_test.go).
		"--idle-timeout", "1s",
		// No event of the stream is too late for its window, so that the
		// activity oracle counts every one (activity_test.go).
		"--allowed-lateness", "100000h",
		// The stream's events are 1ms apart in event time: windows of 10s
		// make a stream of 100,000 events span ten of them.
		"--window", activityWindowLen.String(),
		"--shutdown-timeout", "10s",
		"--log-format", "json",
	}
	args = append(append(args, h.extra...), extra...)
	p.cmd = exec.Command(binary(h.t), args...)
	p.log = filepath.Join(h.logDir, p.name+".log")
	f, err := os.Create(p.log)
	if err != nil {
		h.t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	h.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: sending %v: %v", p.name, sig, err)
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	<-p.done
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and requires exit status 0 within limit; it returns how
// long the exit took.
func (p *proc) stop(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	return p.waitExit(t, start, limit)
}

// waitExit waits for p, sent SIGTERM at start, to exit with status 0 within
// limit of start, and returns how long it took. On a timeout it dumps p's
// goroutines and fails the test.
func (p *proc) waitExit(t *testing.T, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Until(start.Add(limit))):
		// Ask the Go runtime for every goroutine's stack, to see where it
		// is stuck.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		<-p.done
		b, _ := os.ReadFile(p.log)
		if i := strings.Index(string(b), "SIGQUIT"); i >= 0 {
			b = b[i:]
		}
		t.Fatalf("%s did not exit within %s of SIGTERM; goroutines:\n%s", p.name, limit, b)
	}
	if p.err != nil {
		t.Errorf("%s exited with %v after SIGTERM, want status 0", p.name, p.err)
	}
	return time.Since(start)
}

// stayAlive requires p to keep running for d; it fails the test the moment
// p exits.
func (p *proc) stayAlive(t *testing.T, d time.Duration, during string) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited during %s: %v", p.name, during, p.err)
	case <-time.After(d):
	}
}

// logCount counts log lines containing msg.
func (p *proc) logCount(msg string) int {
	f, err := os.Open(p.log)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), msg) {
			n++
		}
	}
	return n
}

// get fetches url and returns the status, content type and body.
func get(url string, timeout time.Duration) (int, string, []byte, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, err
}

// metrics scrapes p's /metrics; a failed scrape fails the test.
func (p *proc) metrics(t *testing.T) testenv.Metrics {
	t.Helper()
	m, err := testenv.ScrapeMetrics(p.base+"/metrics", 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return m
}

// waitMetrics scrapes p's /metrics until ok accepts it, and fails the test
// with ok's last error if limit passes or p exits first.
func (p *proc) waitMetrics(t *testing.T, limit time.Duration, ok func(testenv.Metrics) error) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		m, err := testenv.ScrapeMetrics(p.base+"/metrics", 5*time.Second)
		if err == nil {
			err = ok(m)
		}
		if last = err; last == nil {
			return
		}
		if !p.alive() {
			t.Fatalf("%s exited (%v) while waiting on its metrics: %v", p.name, p.err, last)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after %s: %v", p.name, limit, last)
		}
	}
}
