package cli

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	broker, _ := testenv.Kafka(t, kfake.SeedTopics(1, "user_events", "user_events.dlq"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// A dead letter in an aborted transaction (a fenced member's), before
	// a committed one, is neither listed nor replayed.
	txn, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.TransactionalID("cli-test"), kgo.DisableClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	err = txn.ProduceSync(context.Background(), &kgo.Record{Topic: "user_events.dlq", Value: []byte("aborted"), Headers: []kgo.RecordHeader{
		{Key: dlq.HeaderError, Value: []byte("malformed_json: aborted")},
		{Key: dlq.HeaderErrorCode, Value: []byte("malformed_json")},
		{Key: dlq.HeaderSourceTopic, Value: []byte("user_events")},
		{Key: dlq.HeaderSourcePartition, Value: []byte("0")},
		{Key: dlq.HeaderSourceOffset, Value: []byte("42")},
	}}).FirstErr()
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	err = cl.ProduceSync(context.Background(), &kgo.Record{Topic: "user_events.dlq", Value: []byte("{\"id\":\n\"x\""), Headers: []kgo.RecordHeader{
		{Key: dlq.HeaderError, Value: []byte("malformed_json: invalid JSON at byte 11: unexpected end of JSON input")},
		{Key: dlq.HeaderErrorCode, Value: []byte("malformed_json")},
		{Key: dlq.HeaderSourceTopic, Value: []byte("user_events")},
		{Key: dlq.HeaderSourcePartition, Value: []byte("0")},
		{Key: dlq.HeaderSourceOffset, Value: []byte("41")},
	}}).FirstErr()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := Main(append(args, "--brokers", broker), &out, &errOut)
		return out.String(), errOut.String(), code
	}

	out, errOut, code := run("dlq", "list", "--topic", "user_events.dlq")
	if code != 0 || !strings.Contains(out, "user_events/0/41") || !strings.Contains(out, "malformed_json: invalid JSON at byte 11") || !strings.Contains(errOut, "1 dead letter(s)") {
		t.Errorf("dlq list = %d\n%s%s", code, out, errOut)
	}
	if strings.Count(out, "\n") != 2 {
		t.Errorf("dlq list: a value with a newline must stay on one table row:\n%s", out)
	}
	out, _, code = run("dlq", "list", "--topic", "user_events.dlq", "--format", "json", "--filter-code", "malformed_json")
	if code != 0 || !strings.Contains(out, `"source_offset":41`) || !strings.Contains(out, `"code":"malformed_json"`) {
		t.Errorf("dlq list --format json = %d\n%s", code, out)
	}
	out, _, code = run("dlq", "replay", "--topic", "user_events.dlq", "--filter-code", "bad_timestamp")
	if code != 0 || !strings.Contains(out, "replayed 0 of 0") {
		t.Errorf("dlq replay with a filter that matches nothing = %d\n%s", code, out)
	}
	out, _, code = run("dlq", "replay", "--topic", "user_events.dlq")
	if code != 0 || !strings.Contains(out, "replayed 1 of 1") || !strings.Contains(out, "1 to user_events") {
		t.Errorf("dlq replay = %d\n%s", code, out)
	}
	_, errOut, code = run("dlq", "list")
	if code == 0 || !strings.Contains(errOut, "topic: required") {
		t.Errorf("dlq list without --topic = %d %q, want an error naming topic", code, errOut)
	}
}

// dlq list shows dead letters by partition, then offset, whatever order
// the broker returns the partitions in, and --limit takes the first of
// that order.
func TestDLQListOrdersPartitions(t *testing.T) {
	t.Parallel()
	broker, _ := testenv.Kafka(t, kfake.SeedTopics(4, "user_events.dlq"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Newest partitions first, several records each.
	for _, p := range []int32{3, 2, 1, 0} {
		for i := range 3 {
			err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "user_events.dlq", Partition: p, Value: []byte("{}"), Headers: []kgo.RecordHeader{
				{Key: dlq.HeaderError, Value: []byte("bad_timestamp: x")},
				{Key: dlq.HeaderErrorCode, Value: []byte("bad_timestamp")},
				{Key: dlq.HeaderSourceTopic, Value: []byte("user_events")},
				{Key: dlq.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(p)))},
				{Key: dlq.HeaderSourceOffset, Value: []byte(strconv.Itoa(i))},
			}}).FirstErr()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	positions := func(out string) []string {
		var ps []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			ps = append(ps, strings.Fields(line)[0])
		}
		return ps
	}
	for range 3 { // the broker's order may differ per run
		code, out, errOut := runMain("dlq", "list", "--brokers", broker, "--topic", "user_events.dlq")
		if code != 0 {
			t.Fatalf("dlq list = %d %s", code, errOut)
		}
		want := []string{"0/0", "0/1", "0/2", "1/0", "1/1", "1/2", "2/0", "2/1", "2/2", "3/0", "3/1", "3/2"}
		if got := positions(out); !slices.Equal(got, want) {
			t.Fatalf("dlq list positions %v, want %v", got, want)
		}
	}
	code, out, errOut := runMain("dlq", "list", "--brokers", broker, "--topic", "user_events.dlq", "--limit", "4")
	if got, want := positions(out), []string{"0/0", "0/1", "0/2", "1/0"}; code != 0 || !slices.Equal(got, want) {
		t.Errorf("dlq list --limit 4 = %d %v %s, want %v", code, got, errOut, want)
	}
}

// An unknown --filter-code is an error that lists the codes, for list and
// replay alike; a known one is accepted.
func TestDLQRejectsUnknownFilterCode(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"list", "replay"} {
		code, _, errOut := runMain("dlq", sub, "--brokers", "127.0.0.1:1", "--topic", "t.dlq", "--filter-code", "bad_time")
		if code == 0 {
			t.Fatalf("dlq %s --filter-code bad_time exited 0", sub)
		}
		for _, want := range []string{"--filter-code [STREAMJOIN_FILTER_CODE]", `"bad_time"`, "bad_timestamp", "malformed_json", "nul_character"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("dlq %s: stderr %q, want %q", sub, errOut, want)
			}
		}
	}
	f := dlqFlags{topic: "t.dlq", kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}}
	for _, c := range knownCodes {
		f.filter.Code = string(c)
		if err := f.validate(); err != nil {
			t.Errorf("--filter-code %s: %v", c, err)
		}
	}
}

// knownCodes holds every Code constant internal/event declares: a code
// added there and not here would make dlq refuse to filter on it.
func TestKnownCodesAreEventCodes(t *testing.T) {
	t.Parallel()
	pkgs, err := parser.ParseDir(token.NewFileSet(), "../event", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, pkg := range pkgs {
		for _, file := range pkg.Files {
			for _, decl := range file.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
						continue
					}
					for _, v := range vs.Values {
						if lit, ok := v.(*ast.BasicLit); ok {
							s, _ := strconv.Unquote(lit.Value)
							declared = append(declared, s)
						}
					}
				}
			}
		}
	}
	known := make([]string, len(knownCodes))
	for i, c := range knownCodes {
		known[i] = string(c)
	}
	slices.Sort(declared)
	slices.Sort(known)
	if len(declared) < 5 || !slices.Equal(declared, known) {
		t.Errorf("internal/event declares codes %v; knownCodes holds %v", declared, known)
	}
}
