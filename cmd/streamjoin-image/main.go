// Command streamjoin-image builds streamjoin's OCI image from a static
// binary without a container daemon (`make image`), as a tarball that
// `docker load -i` and `crane push` read. See internal/image.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/streamjoin/streamjoin/internal/image"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "streamjoin-image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("streamjoin-image", flag.ContinueOnError)
	bin := fs.String("binary", "bin/streamjoin", "static streamjoin binary (CGO_ENABLED=0)")
	ca := fs.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to include")
	out := fs.String("out", "bin/streamjoin-image.tar", "image tarball to write")
	tag := fs.String("tag", "streamjoin:latest", "tag recorded in the tarball")
	arch := fs.String("arch", "", "GOARCH the binary was built for (default: this machine's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ports, err := image.DefaultPorts()
	if err != nil {
		return err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "streamjoin",
		"org.opencontainers.image.description": "Joins Kafka user and organization event streams into PostgreSQL and serves the result over HTTP",
	}
	if v := binaryVersion(*bin, *arch); v != "" {
		labels["org.opencontainers.image.version"] = v
	}
	img, err := image.Build(image.Options{Binary: *bin, CACerts: *ca, ExposedPorts: ports, Labels: labels, Arch: *arch})
	if err != nil {
		return err
	}
	if err := image.WriteTarball(img, *tag, *out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s %s (user %s, entrypoint %v, ports %v)\n", *out, *tag, digest, image.User, image.Entrypoint(), ports)
	return nil
}

// binaryVersion is what the binary's --version says, or "" when it cannot
// run here (another architecture).
func binaryVersion(bin, arch string) string {
	if arch != "" {
		return ""
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}
