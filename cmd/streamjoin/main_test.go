package main_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevBinary builds the real binary, runs `dev --sample` on free ports,
// reads the joined sample over HTTP, then sends SIGTERM: the process exits 0
// and leaves no postgres running.
func TestDevBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "streamjoin")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Under /tmp and world-searchable, so that as root the postgres user can
	// reach the cluster directory.
	dataDir, err := os.MkdirTemp("", "streamjoin-devtest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataDir) })

	cmd := exec.Command(bin, "dev", "--sample", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	apiRE := regexp.MustCompile(`HTTP API\s+: (http://\S+)`)
	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := apiRE.FindStringSubmatch(sc.Text()); m != nil {
				base <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-base:
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not print its API address within 60s")
	}

	want := `"organization_tier":"gold"`
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := get(t, url+"/users/Ripley")
		if strings.Contains(body, `"user_type":"Admin"`) && strings.Contains(body, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /users/Ripley = %s; want the joined sample", body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	pidBytes, err := os.ReadFile(filepath.Join(dataDir, "postgres", "postmaster.pid"))
	if err != nil {
		t.Fatalf("reading postmaster.pid: %v", err)
	}
	pgPID, err := strconv.Atoi(strings.SplitN(string(pidBytes), "\n", 2)[0])
	if err != nil || pgPID <= 0 {
		t.Fatalf("postmaster.pid does not start with a pid: %q", pidBytes)
	}
	// Checked alive first, so that "gone after exit" means something.
	if !running(pgPID) {
		t.Fatalf("postgres (pid %d from postmaster.pid) is not running while dev is", pgPID)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev exited with %v after SIGTERM, want exit 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not exit within 60s of SIGTERM")
	}
	if running(pgPID) {
		t.Errorf("postgres (pid %d) still running after dev exited", pgPID)
	}
}

// running reports whether a process with pid exists (EPERM: it does, owned
// by another user, as postgres is when the tests run as root).
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
