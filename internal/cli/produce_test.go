package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
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
	// Standard error is not a terminal here: progress comes as lines.
	if !strings.Contains(stderr, "producing to user_events: 2 of 2 records acknowledged (100%)") {
		t.Errorf("produce's stderr, not a terminal, has no progress line: %q", stderr)
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

// A record without the --key field (absent or null) is an error for that
// record: the others are produced, and the command exits 1 with a count
// and which records they were.
func TestProduceKeyFieldMissing(t *testing.T) {
	t.Parallel()
	broker, _ := testenv.Kafka(t, kfake.SeedTopics(1, "user_events"))
	file := writeFile(t, `{"id":"a","who":"Kim"}`+"\n"+`{"id":"b"}`+"\n"+`{"id":"c","who":null}`+"\n"+`{"id":"d","who":"Lee"}`+"\n")
	code, stdout, stderr := runMain("produce", "--brokers", broker, "--topic", "user_events", "--file", file, "--key", "who")
	if code == 0 {
		t.Fatalf("produce with records lacking --key exited 0\n%s%s", stdout, stderr)
	}
	if !strings.Contains(stdout, "produced 2 records to user_events") {
		t.Errorf("stdout %q: want the 2 keyed records produced", stdout)
	}
	if want := `2 records of 4 had no field "who" (absent or null), so no key, and were not produced: records #2, #3`; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q: want %q", stderr, want)
	}
	// One record, one field: singular.
	one := writeFile(t, `{"who":"Kim"}`+"\n")
	code, stdout, stderr = runMain("produce", "--brokers", broker, "--topic", "user_events", "--file", one, "--key", "id")
	if code == 0 || !strings.Contains(stdout, "produced 0 records") || !strings.Contains(stderr, `1 record of 1 had no field "id" (absent or null), so no key, and was not produced: record #1`) {
		t.Errorf("produce of one unkeyed record = %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runMain("produce", "--brokers", broker, "--topic", "user_events", "--file", one)
	if code != 0 || !strings.Contains(stdout, "produced 1 record to user_events\n") {
		t.Errorf("produce of one record = %d\n%s%s, want \"produced 1 record\"", code, stdout, stderr)
	}
}

// Without a terminal, progress comes as a line at most every interval
// and one at the end.
func TestProgressLines(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	progress, finish := newProgress(&out, "t", 3, time.Nanosecond)
	progress()
	time.Sleep(time.Millisecond)
	progress()
	progress()
	finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "1 of 3 records acknowledged (33%)") || !strings.Contains(lines[2], "3 of 3 records acknowledged (100%)") {
		t.Errorf("progress lines:\n%s\nwant 1 of 3, 2 of 3, then 3 of 3 at the end", out.String())
	}
	out.Reset()
	progress, finish = newProgress(&out, "t", 1000, time.Hour)
	for range 1000 {
		progress()
	}
	finish()
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Errorf("%d lines within one interval, want only the final one:\n%s", n, out.String())
	}
}

// Against a port nothing listens on, produce and gen fail within their
// --timeout (or its former name --delivery-timeout), exit non-zero and say
// what they could not reach; they do not hang.
func TestProduceToDeadBrokerFailsInBoundedTime(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `{"id":"a"}`+"\n"+`{"id":"b"}`+"\n")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{name: "produce", args: []string{"produce", "--topic", "user_events", "--file", file, "--timeout", "2s"}, want: "0 of 2 records produced to user_events"},
		{name: "produce --delivery-timeout", args: []string{"produce", "--topic", "user_events", "--file", file, "--delivery-timeout", "2s"}, want: "0 of 2 records produced to user_events"},
		{name: "gen", args: []string{"gen", "--events", "10", "--org-events", "1", "--timeout", "2s"}, want: "producing"},
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
				code, stdout, stderr := runMain(append(tt.args, "--brokers", dead, "--log-level", "error")...)
				done <- result{code, stdout, stderr}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("%s to a dead broker still running after 30s, with a 2s timeout", tt.name)
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
			if took < 2*time.Second || took > 8*time.Second {
				t.Errorf("gave up after %s, want about the 2s timeout", took)
			}
			t.Logf("failed after %s: %s", took.Round(time.Millisecond), r.stderr)
		})
	}
}

// --delivery-timeout, the former name of --timeout, still works; when
// both are set, the one set at the higher level wins (command line over
// environment), and --timeout on a tie.
//
// Not parallel: it sets environment variables.
func TestTimeoutAlias(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		want time.Duration
	}{
		{"default", nil, nil, 30 * time.Second},
		{"timeout", []string{"--timeout", "3s"}, nil, 3 * time.Second},
		{"alias", []string{"--delivery-timeout", "5s"}, nil, 5 * time.Second},
		{"both on the command line", []string{"--delivery-timeout", "5s", "--timeout", "3s"}, nil, 3 * time.Second},
		{"alias on the command line over timeout from env", []string{"--delivery-timeout", "4s"}, []string{"STREAMJOIN_TIMEOUT=7s"}, 4 * time.Second},
		{"timeout on the command line over alias from env", []string{"--timeout", "3s"}, []string{"STREAMJOIN_DELIVERY_TIMEOUT=9s"}, 3 * time.Second},
		{"alias from env", nil, []string{"STREAMJOIN_DELIVERY_TIMEOUT=9s"}, 9 * time.Second},
		{"both from env", nil, []string{"STREAMJOIN_DELIVERY_TIMEOUT=9s", "STREAMJOIN_TIMEOUT=7s"}, 7 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env...)
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var to timeoutFlags
			to.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if _, err := applyConfig(fs, ""); err != nil {
				t.Fatal(err)
			}
			if got := to.get(fs); got != tt.want {
				t.Errorf("timeout = %s, want %s", got, tt.want)
			}
		})
	}
}
