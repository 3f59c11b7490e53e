package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A token file that is missing, unreadable or holds no token fails run and
// dev at start, naming the flag, its variable and where the value came
// from; the error never quotes the file. Nothing starts: the DSN and broker
// are unreachable, and the settings are checked first.
//
// Not parallel: it sets environment variables.
func TestBadTokenFileFailsTheStart(t *testing.T) {
	const secret = "s3cret-token-not-to-print"
	dir := t.TempDir()
	empty, bad, unreadable := filepath.Join(dir, "empty"), filepath.Join(dir, "bad"), filepath.Join(dir, "unreadable")
	for path, content := range map[string]string{empty: "# no tokens yet\n\n", bad: "Bearer " + secret + "\n", unreadable: secret + "\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A directory cannot be read as a file, even by root.
	if err := os.Mkdir(unreadable+".d", 0o700); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	base := map[string][]string{
		"run":            {"run", "--postgres", "postgres://u@127.0.0.1:1/db", "--brokers", "127.0.0.1:1"},
		"run --role api": {"run", "--role", "api", "--postgres-read", "postgres://u@127.0.0.1:1/db"},
		"dev":            {"dev", "--postgres", "postgres://u@127.0.0.1:1/db", "--kafka-addr", "127.0.0.1:0"},
	}
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		flag string
		from string
		why  string
	}{
		{name: "missing", args: []string{"--api-token-file", missing}, flag: "api-token-file", from: "the command line", why: "no such file"},
		{name: "empty, from env", env: []string{"STREAMJOIN_API_TOKEN_FILE=" + empty}, flag: "api-token-file", from: "STREAMJOIN_API_TOKEN_FILE", why: "holds no token"},
		{name: "a directory", args: []string{"--metrics-token-file", unreadable + ".d"}, flag: "metrics-token-file", from: "the command line", why: "is a directory"},
		{name: "a bad line, from env", env: []string{"STREAMJOIN_METRICS_TOKEN_FILE=" + bad}, flag: "metrics-token-file", from: "STREAMJOIN_METRICS_TOKEN_FILE", why: "line 1"},
	} {
		for cmd, args := range base {
			t.Run(tt.name+"/"+cmd, func(t *testing.T) {
				setenv(t, tt.env...)
				code, stdout, stderr := runMain(append(append([]string{}, args...), tt.args...)...)
				if code == 0 {
					t.Fatalf("exit 0, want a failure; stdout %q", stdout)
				}
				for _, want := range []string{"--" + tt.flag + " [" + envName(tt.flag) + "]", "from " + tt.from, tt.why} {
					if !strings.Contains(stderr, want) {
						t.Errorf("stderr %q: want it to hold %q", stderr, want)
					}
				}
				if strings.Contains(stderr, secret) {
					t.Errorf("stderr %q quotes the token file", stderr)
				}
			})
		}
	}
}
