package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
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
