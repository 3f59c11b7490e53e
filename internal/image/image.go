// Package image builds streamjoin's OCI image without a container daemon:
// one layer on an empty base holding the static binary, the CA bundle and
// an /etc/passwd naming a non-root user. The Dockerfile at the repository's
// root builds the same image with Docker; a test keeps the two in step.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/streamjoin/streamjoin/internal/cli"
)

// What the image runs as and how it starts. deploy/ (runAsUser) and the
// Dockerfile (USER, ENTRYPOINT) are tested against these.
const (
	// UID and GID of the user the process runs as: distroless's nonroot.
	UID = 65532
	GID = 65532
	// User is the image config's user, numeric so that Kubernetes'
	// runAsNonRoot can verify it without reading /etc/passwd.
	User = "65532:65532"
	// BinaryPath is where the static binary lies in the image.
	BinaryPath = "/streamjoin"
	// CACertsPath is where Go's crypto/x509 looks first on Linux.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
)

// Entrypoint is the image's entrypoint: the binary itself, no shell (the
// image has none).
func Entrypoint() []string { return []string{BinaryPath} }

// Options says what goes into the image.
type Options struct {
	Binary       string            // path of the static streamjoin binary (CGO_ENABLED=0)
	CACerts      string            // path of a PEM CA bundle, e.g. /etc/ssl/certs/ca-certificates.crt
	ExposedPorts []string          // e.g. "8080/tcp"
	Labels       map[string]string // OCI labels (org.opencontainers.image.*)
	Arch         string            // GOARCH of the binary (default: this machine's)
	// Created is the image's creation time and every file's mtime. The
	// zero value gives the Unix epoch: the same inputs give the same
	// digest.
	Created time.Time
}

// Build returns the image. It reads the binary and the CA bundle into
// memory; nothing is written.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	ca, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("ca certificates: %w", err)
	}
	created := o.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	layerTar, err := rootfs(bin, ca, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{CreatedBy: "streamjoin-image: " + BinaryPath + ", CA certificates, /etc/passwd", Created: v1.Time{Time: created}},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	arch := o.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	cf.OS, cf.Architecture, cf.Created = "linux", arch, v1.Time{Time: created}
	cf.Config.User = User
	cf.Config.Entrypoint = Entrypoint()
	cf.Config.Cmd = nil
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"SSL_CERT_FILE=" + CACertsPath}
	cf.Config.Labels = o.Labels
	if len(o.ExposedPorts) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range o.ExposedPorts {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// WriteTarball writes img to path as a tarball tagged tag, the format
// `docker load -i` and `crane push` read.
func WriteTarball(img v1.Image, tag, path string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// rootfs is the layer's tar: the few directories, /etc/passwd and
// /etc/group naming the non-root user, the CA bundle and the binary, all
// owned by root (the process cannot change them) with mtime at.
func rootfs(bin, ca []byte, at time.Time) ([]byte, error) {
	passwd, group := Passwd(), Group()
	entries := []struct {
		name string
		mode int64
		dir  bool
		data []byte
	}{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: CACertsPath[1:], mode: 0o644, data: ca},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: BinaryPath[1:], mode: 0o755, data: bin},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: at, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// Passwd is the image's /etc/passwd: root, and the user the process runs
// as. No login shell: the image has none.
func Passwd() string {
	return fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
}

// Group is the image's /etc/group.
func Group() string { return fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID) }

// DefaultPorts are the image's exposed ports: the port of `streamjoin
// run`'s --http-addr default, read from the command itself.
func DefaultPorts() ([]string, error) {
	for _, s := range cli.Settings()["run"] {
		if s.Flag == "http-addr" {
			p, err := ExposedPort(s.Default)
			if err != nil {
				return nil, err
			}
			return []string{p}, nil
		}
	}
	return nil, fmt.Errorf("streamjoin run has no --http-addr")
}

// ExposedPort is the image's exposed port for a listen address such as
// ":8080" (the default of --http-addr): "8080/tcp".
func ExposedPort(addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("listen address %q has no fixed port", addr)
	}
	return port + "/tcp", nil
}
