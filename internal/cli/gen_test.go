package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestGenCommand(t *testing.T) {
	t.Parallel()
	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := Main(args, &out, &errOut)
		return out.String(), errOut.String(), code
	}

	dir := t.TempDir()
	out, errOut, code := run("gen", "--out", dir, "--events", "1000", "--org-events", "50", "--invalid", "0.05", "--seed", "3")
	if code != 0 || !strings.Contains(out, "generated 1050 records") {
		t.Fatalf("gen --out = %d\n%s%s", code, out, errOut)
	}
	for name, min := range map[string]int{"user_events.ndjson": 900, "org_events.ndjson": 40} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n < min {
			t.Errorf("%s has %d lines, want at least %d", name, n, min)
		}
	}
	// The same seed writes the same stream; another seed, another stream
	// (so that the comparison can fail).
	read := func(dir string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "user_events.ndjson"))
		if err != nil || len(b) == 0 {
			t.Fatalf("reading what gen wrote: %d bytes, %v", len(b), err)
		}
		return b
	}
	for seed, same := range map[string]bool{"3": true, "4": false} {
		again := t.TempDir()
		if out, errOut, code := run("gen", "--out", again, "--events", "1000", "--org-events", "50", "--invalid", "0.05", "--seed", seed); code != 0 {
			t.Fatalf("gen --out --seed %s = %d\n%s%s", seed, code, out, errOut)
		}
		if bytes.Equal(read(dir), read(again)) != same {
			t.Errorf("--seed %s after --seed 3: same stream = %v, want %v", seed, !same, same)
		}
	}

	// --events counts user events; organization events default to few
	// when it is small; the summary counts each stream apart.
	small := t.TempDir()
	out, errOut, code = run("gen", "--out", small, "--events", "1000", "--invalid", "0.1", "--seed", "5")
	if code != 0 || !strings.Contains(out, "generated 1020 records: 1000 user events (") || !strings.Contains(out, "and 20 organization events (") {
		t.Fatalf("gen --events 1000 = %d\n%s%s, want 1000 user events and 20 organization events", code, out, errOut)
	}
	help, _, code := run("gen", "--help")
	for _, want := range []string{"--events is the number of user events", "fraction of each stream's records", "20 for\n--events 1000"} {
		if code != 0 || !strings.Contains(help, want) {
			t.Errorf("gen --help does not say %q", want)
		}
	}

	broker, _ := testenv.Kafka(t, kfake.SeedTopics(2, "user_events", "org_events"))
	out, errOut, code = run("gen", "--brokers", broker, "--events", "500", "--org-events", "20", "--rate", "5000")
	if code != 0 || !strings.Contains(out, "generated 520 records") {
		t.Fatalf("gen --brokers = %d\n%s%s", code, out, errOut)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("user_events", "org_events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for n < 520 && ctx.Err() == nil {
		n += cl.PollFetches(ctx).NumRecords()
	}
	if n != 520 {
		t.Errorf("the topics hold %d records, want 520", n)
	}

	if _, errOut, code := run("gen", "--events", "10"); code == 0 || !strings.Contains(errOut, "brokers or out") {
		t.Errorf("gen without a destination = %d %q, want an error naming brokers or out", code, errOut)
	}
}
