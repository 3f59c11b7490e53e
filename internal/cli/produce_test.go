package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.ndjson")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProduceCommand(t *testing.T) {
	t.Parallel()
	broker, _ := testenv.Kafka(t, kfake.SeedTopics(1, "user_events"))
	file := writeFile(t, `{"id":"a","who":"Kim"}`+"\n"+`{"id":"b","who":"Lee"}`+"\n")
	code, stdout, stderr := runMain("produce", "--brokers", broker, "--topic", "user_events", "--file", file, "--key", "who")
	if code != 0 || !strings.Contains(stdout, "produced 2 records to user_events") {
		t.Fatalf("produce = %d\n%s%s", code, stdout, stderr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("user_events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	for len(keys) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
	}
	if strings.Join(keys, ",") != "Kim,Lee" {
		t.Errorf("record keys = %v, want [Kim Lee]", keys)
	}
}

// Against a port nothing listens on, produce and gen fail within their
// delivery timeout, exit non-zero and say what they could not reach; they
// do not hang.
func TestProduceToDeadBrokerFailsInBoundedTime(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `{"id":"a"}`+"\n"+`{"id":"b"}`+"\n")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{name: "produce", args: []string{"produce", "--topic", "user_events", "--file", file}, want: "0 of 2 records produced to user_events"},
		{name: "gen", args: []string{"gen", "--events", "10", "--org-events", "1"}, want: "producing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port, err := devenv.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			dead := "127.0.0.1:" + strconv.Itoa(port)
			type result struct {
				code           int
				stdout, stderr string
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				code, stdout, stderr := runMain(append(tt.args, "--brokers", dead, "--delivery-timeout", "2s", "--log-level", "error")...)
				done <- result{code, stdout, stderr}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("%s to a dead broker still running after 30s, with --delivery-timeout 2s", tt.name)
			}
			took := time.Since(start)
			if r.code == 0 {
				t.Fatalf("exit 0 against a dead broker; stdout %q", r.stdout)
			}
			for _, want := range []string{tt.want, dead, "timed out", "connection refused"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q: want it to say %q", r.stderr, want)
				}
			}
			if took < 2*time.Second {
				t.Errorf("gave up after %s, before the 2s delivery timeout", took)
			}
			t.Logf("failed after %s: %s", took.Round(time.Millisecond), r.stderr)
		})
	}
}
