package deploy

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestProbesAgainstBinary runs the real binary as each probed container
// of each rendering would run it (its args, its ConfigMap settings and
// literal variables), with PostgreSQL and Kafka unreachable, as at a pod's
// start, and asks the probes' own paths: liveness must answer 200 (the
// process is alive, so it must not be restarted), readiness 503 (it cannot
// serve yet), and a path nobody serves 404, so that a misspelled probe
// path cannot pass as either. Secret values are replaced by unreachable
// ones, *_FILE settings by files holding a dummy secret, and the listen
// address by a free loopback port (checkProbes holds the manifests' port
// to the binary's).
func TestProbesAgainstBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "streamjoin")
	build := exec.Command("go", "build", "-o", bin, "./cmd/streamjoin")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	probed := 0
	for kdir, r := range renderAll(t) {
		for _, w := range r.workloads {
			for _, c := range w.template.Spec.Containers {
				if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
					continue // checkProbes says whether that is right
				}
				probed++
				t.Run(strings.ReplaceAll(kdir, "/", "_")+"/"+w.name, func(t *testing.T) {
					probeContainer(t, bin, r, c)
				})
			}
		}
	}
	if probed == 0 {
		t.Fatal("no container has HTTP probes")
	}
}

// closedAddr is a loopback address nothing listens on: connecting to it is
// refused at once.
const closedAddr = "127.0.0.1:1"

func probeContainer(t *testing.T, bin string, r *rendered, c corev1.Container) {
	env, errs := containerEnv(c, r.configMaps)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	vars := []string{"HOME=" + t.TempDir()}
	for name, v := range env {
		val := v.value
		switch {
		case v.secret != nil && strings.HasPrefix(name, envPrefix+"POSTGRES"):
			val = "postgres://streamjoin@" + closedAddr + "/streamjoin?sslmode=disable&connect_timeout=1"
		case v.secret != nil:
			val = "dummy-secret"
		case v.field != "":
			val = "streamjoin-probe-0"
		case name == envPrefix+"BROKERS":
			val = closedAddr
		case strings.HasPrefix(name, envPrefix) && strings.HasSuffix(name, "_FILE"):
			val = filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(val, []byte("dummy-secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		vars = append(vars, name+"="+val)
	}
	slices.Sort(vars)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var stderr strings.Builder
	cmd := exec.Command(bin, append(slices.Clone(c.Args), "--http-addr="+addr)...)
	cmd.Env, cmd.Stderr = vars, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("streamjoin %v did not exit within 15s of SIGTERM", c.Args)
		}
	}()

	client := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, strings.TrimSpace(b.String()), nil
	}
	live, ready := c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, _, err := get(live); err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("streamjoin %v with %v exited before serving HTTP: %v\n%s", c.Args, vars, err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("streamjoin %v serves no HTTP on %s after 15s\n%s", c.Args, addr, stderr.String())
		}
	}
	for _, p := range []struct {
		what, path string
		want       int
	}{
		{"liveness", live, http.StatusOK},
		{"readiness", ready, http.StatusServiceUnavailable},
		{"a path nobody serves", "/no-such-probe-path", http.StatusNotFound},
	} {
		code, body, err := get(p.path)
		if err != nil || code != p.want {
			t.Errorf("%s GET %s: %d %q (%v), want %d", p.what, p.path, code, body, err, p.want)
		} else {
			t.Logf("streamjoin %s: %s GET %s: %d %s", strings.Join(c.Args, " "), p.what, p.path, code, body)
		}
	}
	if t.Failed() {
		fmt.Fprintln(os.Stderr, stderr.String())
	}
}
