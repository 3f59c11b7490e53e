package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildBinary builds the static streamjoin binary into dir, as `make build`
// does.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "streamjoin")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/streamjoin")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestImage builds the image as `make image` does, writes the tarball,
// opens it again and checks what a runtime would see: the config (non-root
// numeric user, the binary as entrypoint, no shell command, the API's
// port) and the files, then runs the extracted binary.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	ca := filepath.Join(dir, "ca.pem")
	caPEM := []byte("-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(ca, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := DefaultPorts()
	if err != nil {
		t.Fatal(err)
	}
	built, err := Build(Options{Binary: bin, CACerts: ca, ExposedPorts: ports, Labels: map[string]string{"org.opencontainers.image.title": "streamjoin"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "image.tar")
	if err := WriteTarball(built, "streamjoin:test", path); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatalf("open the written tarball: %v", err)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	uid, _, _ := strings.Cut(c.User, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 || n != UID {
		t.Errorf("config user %q: want the numeric non-root uid %d (runAsNonRoot needs a number)", c.User, UID)
	}
	if !slices.Equal(c.Entrypoint, []string{"/streamjoin"}) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q: want [/streamjoin] and no cmd", c.Entrypoint, c.Cmd)
	}
	for _, p := range ports {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("exposed ports %v: want %s", c.ExposedPorts, p)
		}
	}
	if cf.OS != "linux" || c.Labels["org.opencontainers.image.title"] != "streamjoin" {
		t.Errorf("os %q labels %v", cf.OS, c.Labels)
	}

	files := extract(t, img)
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox"} {
		if _, ok := files[shell]; ok {
			t.Errorf("image holds %s: the image must need no shell", shell)
		}
	}
	if f := files["etc/ssl/certs/ca-certificates.crt"]; !bytes.Equal(f.data, caPEM) {
		t.Errorf("CA bundle: %q", f.data)
	}
	if f := files["etc/passwd"]; !strings.Contains(string(f.data), ":"+strconv.Itoa(UID)+":") {
		t.Errorf("/etc/passwd names no user %d: %q", UID, f.data)
	}
	exe, ok := files["streamjoin"]
	if !ok {
		t.Fatalf("no /streamjoin in the image; files: %v", keys(files))
	}
	if exe.hdr.Mode&0o111 == 0 || exe.hdr.Uid != 0 || exe.hdr.Mode&0o022 != 0 {
		t.Errorf("/streamjoin mode %o uid %d: want executable, owned by root, not writable by the user", exe.hdr.Mode, exe.hdr.Uid)
	}
	extracted := filepath.Join(dir, "extracted")
	if err := os.WriteFile(extracted, exe.data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(extracted, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "streamjoin version ") {
		t.Errorf("extracted /streamjoin --version: %v: %q", err, out)
	}
	t.Logf("/streamjoin --version: %s", strings.TrimSpace(string(out)))

	// The same inputs give the same image, so a rebuild is a no-op for a
	// registry: no build time in the config or the files (a second Build,
	// compressing 40 MB again, costs seconds under -race).
	if !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("config created %v: want the epoch, for a reproducible digest", cf.Created.Time)
	}
	for name, f := range files {
		if !f.hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s mtime %v: want the epoch, for a reproducible digest", name, f.hdr.ModTime)
		}
	}
}

type file struct {
	hdr  *tar.Header
	data []byte
}

// extract reads the image's flattened file system, keyed by path without
// the leading slash.
func extract(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("read the image's files: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(strings.TrimSuffix(h.Name, "/"), "/")] = file{h, data}
	}
}

func keys(m map[string]file) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
