package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

// watch fails at start on a bad setting, naming the flag, its variable and
// where the value came from, before it reaches Kafka (the broker is
// unreachable).
//
// Not parallel: it sets environment variables.
func TestWatchRejectsABadSettingAtStart(t *testing.T) {
	const broker = "127.0.0.1:1"
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		flag string
		from string
	}{
		{name: "no source", args: []string{"--topic", "t"}, flag: "dir", from: "the default"},
		{name: "missing dir", args: []string{"--dir", filepath.Join(dir, "nope"), "--topic", "t"}, flag: "dir", from: "the command line"},
		{name: "dir is a file", args: []string{"--dir", notDir, "--topic", "t"}, flag: "dir", from: "the command line"},
		{name: "no topic", args: []string{"--dir", dir}, flag: "topic", from: "the default"},
		{name: "bad s3 url from env", args: []string{"--topic", "t"}, env: []string{"STREAMJOIN_S3=http://b/p"}, flag: "s3", from: "STREAMJOIN_S3"},
		{name: "bad rule", args: []string{"--dir", dir, "--topic", "t", "--complete", "soon"}, flag: "complete", from: "the command line"},
		{name: "zero settle from env", args: []string{"--dir", dir, "--topic", "t"}, env: []string{"STREAMJOIN_SETTLE=0s"}, flag: "settle", from: "STREAMJOIN_SETTLE"},
		{name: "unparsable chunk", args: []string{"--dir", dir, "--topic", "t", "--chunk-records", "x"}, flag: "chunk-records", from: "the command line"},
		{name: "zero chunk from env", args: []string{"--dir", dir, "--topic", "t"}, env: []string{"STREAMJOIN_CHUNK_RECORDS=0"}, flag: "chunk-records", from: "STREAMJOIN_CHUNK_RECORDS"},
		{name: "manifest is the topic", args: []string{"--dir", dir, "--topic", "t", "--manifest-topic", "t"}, flag: "manifest-topic", from: "the command line"},
		{name: "brokers", args: []string{"--dir", dir, "--topic", "t", "--brokers", "no-port"}, flag: "brokers", from: "the command line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env...)
			args := append([]string{"watch"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--brokers") {
				args = append(args, "--brokers", broker)
			}
			code, stdout, stderr := runMain(args...)
			if code == 0 {
				t.Fatalf("exit 0, want a failure; stdout %q", stdout)
			}
			for _, want := range []string{"--" + tt.flag, envName(tt.flag), "from " + tt.from} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q: want it to name %q", stderr, want)
				}
			}
		})
	}
}

// TestWatchCommand runs the command against a broker: a file dropped in
// the directory is produced and moved to done/, and the command returns
// nil when its context ends (as on SIGINT/SIGTERM).
func TestWatchCommand(t *testing.T) {
	t.Parallel()
	addr, _ := testenv.Kafka(t, kfake.SeedTopics(1, "user_events"))
	dir := t.TempDir()
	root := newRoot()
	root.SetArgs([]string{"watch", "--brokers", addr, "--dir", dir, "--topic", "user_events", "--key", "id",
		"--complete", "rename", "--rescan-interval", "100ms", "--log-level", "warn"})
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- root.ExecuteContext(ctx) }()

	if err := os.WriteFile(filepath.Join(dir, "a.json.tmp"), []byte(`[{"id":"1"},{"id":"2"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "a.json.tmp"), filepath.Join(dir, "a.json")); err != nil {
		t.Fatal(err)
	}
	done := filepath.Join(dir, "done", "a.json")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(done); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear; output:\n%s", done, out.String())
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("watch returned %v after its context ended, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not return within 30s of its context ending")
	}
}
