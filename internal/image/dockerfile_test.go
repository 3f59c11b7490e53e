package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction: its keyword, upper case, and
// the rest of its (joined) lines.
type instruction struct{ cmd, args string }

// parseDockerfile splits a Dockerfile into instructions, joining lines
// continued with a backslash and dropping comments.
func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDockerfileMatchesImage keeps the Dockerfile equivalent to the image
// `make image` builds: the final stage is an empty base with the static
// binary, the CA bundle and the same /etc/passwd, and it runs as the same
// user with the same entrypoint and port.
func TestDockerfileMatchesImage(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	all := parseDockerfile(string(src))
	last := -1
	for i, in := range all {
		if in.cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	build, final := all[:last], all[last:]
	if base := strings.Fields(final[0].args)[0]; base != "scratch" && !strings.Contains(base, "distroless/static") {
		t.Errorf("final stage FROM %s: want scratch or distroless static, as the image builder's empty base", base)
	}
	ports, err := DefaultPorts()
	if err != nil {
		t.Fatal(err)
	}
	var (
		user, exposed []string
		entrypoint    []string
		copies        = map[string]bool{}
		env           []string
	)
	for _, in := range final[1:] {
		switch in.cmd {
		case "USER":
			user = append(user, in.args)
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENTRYPOINT":
			entrypoint = nil
			if err := json.Unmarshal([]byte(in.args), &entrypoint); err != nil {
				t.Errorf("ENTRYPOINT %s: want the exec (JSON) form, the image has no shell: %v", in.args, err)
			}
		case "COPY":
			f := strings.Fields(in.args)
			copies[f[len(f)-1]] = true
		case "ENV":
			env = append(env, in.args)
		case "CMD", "RUN", "SHELL":
			t.Errorf("final stage %s %s: the image has no shell", in.cmd, in.args)
		}
	}
	if !slices.Equal(user, []string{User}) {
		t.Errorf("USER %q: want exactly %q, the image builder's", user, User)
	}
	if !slices.Equal(entrypoint, Entrypoint()) {
		t.Errorf("ENTRYPOINT %q: want %q, the image builder's", entrypoint, Entrypoint())
	}
	slices.Sort(exposed)
	if !slices.Equal(exposed, ports) {
		t.Errorf("EXPOSE %q: want %q, the port of run's --http-addr default", exposed, ports)
	}
	for _, p := range []string{BinaryPath, CACertsPath, "/etc/passwd", "/etc/group"} {
		if !copies[p] {
			t.Errorf("final stage copies nothing to %s", p)
		}
	}
	if !slices.Contains(env, "SSL_CERT_FILE="+CACertsPath) {
		t.Errorf("ENV %q: want SSL_CERT_FILE=%s, as the image builder sets", env, CACertsPath)
	}
	var runs strings.Builder
	for _, in := range build {
		if in.cmd == "RUN" {
			runs.WriteString(in.args + "\n")
		}
	}
	escape := func(s string) string { return strings.ReplaceAll(s, "\n", `\n`) }
	for what, want := range map[string]string{
		"a static build":       "CGO_ENABLED=0 go build",
		"the same /etc/passwd": escape(Passwd()),
		"the same /etc/group":  escape(Group()),
	} {
		if !strings.Contains(runs.String(), want) {
			t.Errorf("build stage: no %s (%q)", what, want)
		}
	}
}
