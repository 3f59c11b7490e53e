package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/streamjoin/streamjoin/internal/devenv"
)

// proc is a streamjoin process run by the benchmark.
type proc struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
}

// outputs are the output topics a pipeline process produces.
type outputs struct {
	changelog bool // user_profiles
	enriched  bool // user_events_enriched and org_activity, the event-time outputs
}

// allOutputs is the default: every output on.
var allOutputs = outputs{changelog: true, enriched: true}

// startPipeline starts `streamjoin run` on schema, with the outputs outs,
// its data routes behind the bench's token file.
func (b *bencher) startPipeline(broker, schema string, outs outputs) (*proc, error) {
	args := []string{"--brokers", broker,
		"--writers", strconv.Itoa(b.cfg.Writers), "--max-poll-records", strconv.Itoa(b.cfg.BatchSize)}
	if !outs.changelog {
		args = append(args, "--changelog-topic=")
	}
	if !outs.enriched {
		args = append(args, "--enriched-topic=", "--activity-topic=")
	} else {
		// Organization partitions that a short stream leaves without
		// records stop holding the as-of join back soon (outputs.go).
		args = append(args, "--idle-timeout", "2s")
	}
	return b.start(schema, args...)
}

// startAPI starts `streamjoin run --role api` on schema: the API alone,
// with no Kafka client, behind the bench's token file.
func (b *bencher) startAPI(schema string) (*proc, error) {
	return b.start(schema, "--role", "api")
}

// start starts `streamjoin run` on schema with args, on a free port,
// with --api-token-file and, if set, PipelineDebugAddr as --debug-addr.
func (b *bencher) start(schema string, args ...string) (*proc, error) {
	port, err := devenv.FreePort()
	if err != nil {
		return nil, err
	}
	p := &proc{base: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	p.cmd = exec.Command(b.cfg.Binary, "run",
		"--postgres", b.dsn, "--schema", schema,
		"--http-addr", "127.0.0.1:"+strconv.Itoa(port),
		"--api-token-file", b.tokenFile,
		"--log-level", "warn")
	p.cmd.Args = append(p.cmd.Args, args...)
	if b.cfg.PipelineDebugAddr != "" {
		p.cmd.Args = append(p.cmd.Args, "--debug-addr", b.cfg.PipelineDebugAddr)
	}
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", b.cfg.Binary, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop reads the process's peak RSS, sends SIGTERM, waits, and returns the
// peak RSS in bytes. The peak is VmHWM from /proc, the high-water mark of the
// process's own address space. (The rusage that wait returns is no good
// here: on Linux a child's ru_maxrss starts from the parent's RSS at fork,
// and this benchmark's own process holds the whole dataset.)
func (p *proc) stop() int64 {
	rss := vmHWM(p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return rss
}

// vmHWM returns a process's peak resident set size in bytes, or 0.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// waitReady waits until the process's /ready answers 200.
func (p *proc) waitReady(ctx context.Context, limit time.Duration) error {
	c := http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("the streamjoin process exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := c.Get(p.base + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
	return fmt.Errorf("the streamjoin process was not ready within %s", limit)
}
