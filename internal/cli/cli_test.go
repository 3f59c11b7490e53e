package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// main runs the command line and returns its exit code, stdout and stderr.
func runMain(args ...string) (code int, stdout, stderr string) {
	var out, errOut strings.Builder
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Every command fails at start on a bad value of any of its flags, from the
// command line, the environment or the config file, and names the flag and
// its variable. None of these reaches Kafka or PostgreSQL: the settings are
// checked before anything starts (the brokers and DSN are unreachable).
//
// Not parallel: it sets environment variables.
func TestEveryCommandRejectsABadSettingAtStart(t *testing.T) {
	const (
		dsn    = "postgres://u@127.0.0.1:1/db"
		broker = "127.0.0.1:1"
	)
	file := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(file, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		yaml string
		flag string // the setting the error must name
		from string // where it must say the value came from
	}{
		{name: "run: explicit 0 from env", args: []string{"run", "--postgres", dsn, "--brokers", broker},
			env: []string{"STREAMJOIN_WRITERS=0"}, flag: "writers", from: "STREAMJOIN_WRITERS"},
		{name: "run: validated flag", args: []string{"run", "--postgres", dsn, "--brokers", broker, "--start-offset", "middle"},
			flag: "start-offset", from: "the command line"},
		{name: "run: bad enriched-emit", args: []string{"run", "--postgres", dsn, "--brokers", broker, "--enriched-emit", "soon"},
			flag: "enriched-emit", from: "the command line"},
		{name: "run: window not whole seconds", args: []string{"run", "--postgres", dsn, "--brokers", broker},
			env: []string{"STREAMJOIN_WINDOW=1500ms"}, flag: "window", from: "STREAMJOIN_WINDOW"},
		{name: "run: negative lateness", args: []string{"run", "--postgres", dsn, "--brokers", broker, "--allowed-lateness", "-1s"},
			flag: "allowed-lateness", from: "the command line"},
		{name: "run: bad instance id", args: []string{"run", "--postgres", dsn, "--brokers", broker, "--instance-id", "pod 0"},
			flag: "instance-id", from: "the command line"},
		{name: "run: unparsable flag", args: []string{"run", "--postgres", dsn, "--brokers", broker, "--pg-max-conns", "x"},
			flag: "pg-max-conns", from: "the command line"},
		{name: "run: missing postgres", args: []string{"run", "--brokers", broker},
			flag: "postgres", from: "the default"},
		{name: "run: brokers from env", args: []string{"run", "--postgres", dsn},
			env: []string{"STREAMJOIN_BROKERS=no-port"}, flag: "brokers", from: "STREAMJOIN_BROKERS"},
		{name: "run: config file", args: []string{"run", "--postgres", dsn, "--brokers", broker},
			yaml: "max-poll-records: 0\n", flag: "max-poll-records", from: "config file key max-poll-records"},
		{name: "run: log level", args: []string{"run", "--postgres", dsn, "--brokers", broker, "--log-level", "loud"},
			flag: "log-level", from: "the command line"},
		{name: "dev: kafka-addr", args: []string{"dev", "--kafka-addr", "nope"},
			flag: "kafka-addr", from: "the command line"},
		{name: "dev: explicit 0 from env", args: []string{"dev", "--postgres", dsn},
			env: []string{"STREAMJOIN_WRITERS=0"}, flag: "writers", from: "STREAMJOIN_WRITERS"},
		{name: "dev: unparsable bool", args: []string{"dev", "--sample=maybe"},
			flag: "sample", from: "the command line"},
		{name: "migrate: schema", args: []string{"migrate", "--postgres", dsn, "--schema", "Bad-Schema"},
			flag: "schema", from: "the command line"},
		{name: "migrate: from env", args: []string{"migrate", "--postgres", dsn},
			env: []string{"STREAMJOIN_PG_MAX_CONNS=x"}, flag: "pg-max-conns", from: "STREAMJOIN_PG_MAX_CONNS"},
		{name: "produce: brokers", args: []string{"produce", "--brokers", "no-port", "--topic", "t", "--file", file},
			flag: "brokers", from: "the command line"},
		{name: "produce: topic", args: []string{"produce", "--brokers", broker, "--file", file},
			flag: "topic", from: "the default"},
		{name: "produce: timeout", args: []string{"produce", "--brokers", broker, "--topic", "t", "--file", file, "--timeout", "10ms"},
			flag: "timeout", from: "the command line"},
		{name: "produce: delivery-timeout from env", args: []string{"produce", "--brokers", broker, "--topic", "t", "--file", file},
			env: []string{"STREAMJOIN_DELIVERY_TIMEOUT=10ms"}, flag: "delivery-timeout", from: "STREAMJOIN_DELIVERY_TIMEOUT"},
		{name: "gen: rate", args: []string{"gen", "--brokers", broker, "--rate", "-1"},
			flag: "rate", from: "the command line"},
		{name: "gen: workload fraction", args: []string{"gen", "--out", t.TempDir(), "--invalid", "2"},
			flag: "invalid", from: "the command line"},
		{name: "gen: key-by from file", args: []string{"gen", "--out", t.TempDir()},
			yaml: "key-by: name\n", flag: "key-by", from: "config file key key-by"},
		{name: "gen: unparsable seed from env", args: []string{"gen", "--out", t.TempDir()},
			env: []string{"STREAMJOIN_SEED=x"}, flag: "seed", from: "STREAMJOIN_SEED"},
		{name: "gen: brokers", args: []string{"gen", "--brokers", "no-port"},
			flag: "brokers", from: "the command line"},
		{name: "dlq list: format", args: []string{"dlq", "list", "--brokers", broker, "--topic", "t.dlq", "--format", "xml"},
			flag: "format", from: "the command line"},
		{name: "dlq list: limit from env", args: []string{"dlq", "list", "--brokers", broker, "--topic", "t.dlq"},
			env: []string{"STREAMJOIN_LIMIT=-1"}, flag: "limit", from: "STREAMJOIN_LIMIT"},
		{name: "dlq list: brokers from env", args: []string{"dlq", "list", "--topic", "t.dlq"},
			env: []string{"STREAMJOIN_BROKERS=no-port"}, flag: "brokers", from: "STREAMJOIN_BROKERS"},
		{name: "dlq replay: topic", args: []string{"dlq", "replay", "--brokers", broker},
			flag: "topic", from: "the default"},
		{name: "dlq replay: unparsable bool", args: []string{"dlq", "replay", "--brokers", broker, "--topic", "t.dlq", "--dry-run=maybe"},
			flag: "dry-run", from: "the command line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env...)
			args := tt.args
			if tt.yaml != "" {
				path := filepath.Join(t.TempDir(), "streamjoin.yaml")
				if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
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
