package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/app"
)

// loaded is the result of reading a run command's settings as withConfig
// does: flags, then the environment, then the config file.
type loaded struct {
	cfg  *app.Config
	fs   *pflag.FlagSet
	from origins
}

// validate is what withConfig reports for cfg.
func (l loaded) validate() error {
	return nameSettings(l.fs, l.from, l.cfg.Validate())
}

func setup(t *testing.T, yaml string, args ...string) (loaded, error) {
	t.Helper()
	var cfg app.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	appFlags(fs, &cfg, ":8080")
	if err := fs.Parse(args); err != nil {
		return loaded{}, err
	}
	path := ""
	if yaml != "" {
		path = filepath.Join(t.TempDir(), "streamjoin.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	from, err := applyConfig(fs, path)
	return loaded{&cfg, fs, from}, err
}

// setenv sets "NAME=value" pairs for the test.
func setenv(t *testing.T, env ...string) {
	t.Helper()
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("setenv %q: want NAME=value", kv)
		}
		t.Setenv(k, v)
	}
}

// Not parallel: these tests set environment variables.
func TestPrecedenceFlagsThenEnvThenFile(t *testing.T) {
	t.Setenv("STREAMJOIN_GROUP", "from-env")
	t.Setenv("STREAMJOIN_SCHEMA", "env_schema")
	yaml := "group: from-file\nschema: file_schema\nhttp-addr: ':9999'\nbrokers: [a:1, b:2]\nquery-timeout: 3s\n"
	l, err := setup(t, yaml, "--schema", "flag_schema")
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.cfg
	if cfg.Store.Schema != "flag_schema" {
		t.Errorf("schema = %q: a flag must beat env and file", cfg.Store.Schema)
	}
	if cfg.Ingest.Group != "from-env" {
		t.Errorf("group = %q: env must beat the file", cfg.Ingest.Group)
	}
	if cfg.API.Addr != ":9999" || cfg.Store.QueryTimeout != 3*time.Second {
		t.Errorf("file values not applied: addr %q, query timeout %s", cfg.API.Addr, cfg.Store.QueryTimeout)
	}
	if strings.Join(cfg.Kafka.Brokers, ",") != "a:1,b:2" {
		t.Errorf("brokers = %v, want the file's list", cfg.Kafka.Brokers)
	}
	if cfg.Ingest.Partitions != 6 || cfg.Ingest.UserTopic != "user_events" {
		t.Errorf("defaults lost: %+v", cfg.Ingest)
	}
	for flag, want := range map[string]string{
		"schema":     "the command line",
		"group":      "STREAMJOIN_GROUP",
		"http-addr":  "config file key http-addr",
		"partitions": "the default",
	} {
		if got := l.from.of(l.fs, flag); got != want {
			t.Errorf("origin of --%s = %q, want %q", flag, got, want)
		}
	}
}

func TestBrokerLists(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		env, args  []string
		want       string
	}{
		{name: "env comma-separated, spaces trimmed", env: []string{"STREAMJOIN_BROKERS=k1:9092, k2:9092"}, want: "k1:9092,k2:9092"},
		{name: "file list", yaml: "brokers: [a:1, b:2]\n", want: "a:1,b:2"},
		{name: "file comma-separated string", yaml: "brokers: a:1,b:2\n", want: "a:1,b:2"},
		{name: "env replaces the file's list", yaml: "brokers: [a:1, b:2]\n", env: []string{"STREAMJOIN_BROKERS=e:1"}, want: "e:1"},
		{name: "flag replaces env, not appended to it", env: []string{"STREAMJOIN_BROKERS=e:1"}, args: []string{"--brokers", "f:1"}, want: "f:1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env...)
			l, err := setup(t, tt.yaml, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(l.cfg.Kafka.Brokers, ","); got != tt.want {
				t.Errorf("brokers = %q, want %q", got, tt.want)
			}
		})
	}
}

// A bad value names the flag, its variable and where it came from.
func TestBadValuesNameTheSetting(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		env, args  []string
		want       []string
	}{
		{name: "bad env duration", env: []string{"STREAMJOIN_QUERY_TIMEOUT=soon"},
			want: []string{"--query-timeout", "from STREAMJOIN_QUERY_TIMEOUT", `"soon"`}},
		{name: "bad env int", env: []string{"STREAMJOIN_PARTITIONS=six"},
			want: []string{"--partitions", "from STREAMJOIN_PARTITIONS", `"six"`}},
		{name: "bad env bool", env: []string{"STREAMJOIN_CREATE_TOPICS=maybe"},
			want: []string{"--create-topics", "from STREAMJOIN_CREATE_TOPICS"}},
		{name: "empty env int", env: []string{"STREAMJOIN_WRITERS="},
			want: []string{"--writers", "from STREAMJOIN_WRITERS"}},
		{name: "bad file value", yaml: "max-poll-records: lots\n",
			want: []string{"--max-poll-records", "STREAMJOIN_MAX_POLL_RECORDS", "from config file key max-poll-records", `"lots"`}},
		{name: "file duration without unit", yaml: "query-timeout: 3\n",
			want: []string{"--query-timeout", "STREAMJOIN_QUERY_TIMEOUT", "from config file key query-timeout"}},
		{name: "env named although the file is bad too", env: []string{"STREAMJOIN_PARTITIONS=six"}, yaml: "writers: many\n",
			want: []string{"from STREAMJOIN_PARTITIONS", "from config file key writers"}},
		{name: "unknown file key", yaml: "brokerz: [a:1]\n", want: []string{"unknown setting(s) brokerz"}},
		{name: "map under a flag's name", yaml: "http-addr: {host: x}\n", want: []string{"unknown setting(s) http-addr.host"}},
		{name: "config in the config file", yaml: "config: other.yaml\n", want: []string{"unknown setting(s) config"}},
		{name: "bad flag", args: []string{"--pg-max-conns", "x"}, want: []string{"pg-max-conns"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env...)
			_, err := setup(t, tt.yaml, tt.args...)
			if err == nil {
				t.Fatalf("no error, want one naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to name %q", err, w)
				}
			}
		})
	}
}

// An explicit 0, from any source, is kept rather than replaced by the
// default, and Validate then rejects it naming the flag, its variable and
// the value's source.
func TestExplicitZeroIsRejectedNotDefaulted(t *testing.T) {
	base := []string{"--postgres", "postgres://u@h/db", "--brokers", "k:9092"}
	for _, tt := range []struct {
		name, yaml string
		env, args  []string
		got        func(*app.Config) int64
		want       []string
	}{
		{name: "writers from env", env: []string{"STREAMJOIN_WRITERS=0"},
			got:  func(c *app.Config) int64 { return int64(c.Ingest.Writers) },
			want: []string{"--writers [STREAMJOIN_WRITERS]", "writers 0", "from STREAMJOIN_WRITERS"}},
		{name: "writers from env beats the file's", env: []string{"STREAMJOIN_WRITERS=0"}, yaml: "writers: 4\n",
			got:  func(c *app.Config) int64 { return int64(c.Ingest.Writers) },
			want: []string{"--writers [STREAMJOIN_WRITERS]", "from STREAMJOIN_WRITERS"}},
		{name: "writers from file", yaml: "writers: 0\n",
			got:  func(c *app.Config) int64 { return int64(c.Ingest.Writers) },
			want: []string{"--writers [STREAMJOIN_WRITERS]", "from config file key writers"}},
		{name: "writers from flag", args: []string{"--writers", "0"},
			got:  func(c *app.Config) int64 { return int64(c.Ingest.Writers) },
			want: []string{"--writers [STREAMJOIN_WRITERS]", "from the command line"}},
		{name: "max-poll-records from env", env: []string{"STREAMJOIN_MAX_POLL_RECORDS=0"},
			got:  func(c *app.Config) int64 { return int64(c.Ingest.MaxPollRecords) },
			want: []string{"--max-poll-records [STREAMJOIN_MAX_POLL_RECORDS]", "from STREAMJOIN_MAX_POLL_RECORDS"}},
		{name: "pg-max-conns from file", yaml: "pg-max-conns: 0\n",
			got:  func(c *app.Config) int64 { return int64(c.Store.MaxConns) },
			want: []string{"--pg-max-conns [STREAMJOIN_PG_MAX_CONNS]", "from config file key pg-max-conns"}},
		{name: "query-timeout from env", env: []string{"STREAMJOIN_QUERY_TIMEOUT=0s"},
			got:  func(c *app.Config) int64 { return int64(c.Store.QueryTimeout) },
			want: []string{"--query-timeout [STREAMJOIN_QUERY_TIMEOUT]", "from STREAMJOIN_QUERY_TIMEOUT"}},
		{name: "api-lookup-slots from file", yaml: "api-lookup-slots: 0\n",
			got:  func(c *app.Config) int64 { return int64(c.API.LookupSlots) },
			want: []string{"--api-lookup-slots [STREAMJOIN_API_LOOKUP_SLOTS]", "from config file key api-lookup-slots"}},
		{name: "partitions from env", env: []string{"STREAMJOIN_PARTITIONS=0"},
			got:  func(c *app.Config) int64 { return int64(c.Ingest.Partitions) },
			want: []string{"--partitions [STREAMJOIN_PARTITIONS]", "from STREAMJOIN_PARTITIONS"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env...)
			l, err := setup(t, tt.yaml, append(base, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.got(l.cfg); got != 0 {
				t.Fatalf("value = %d, want the explicit 0", got)
			}
			err = l.validate()
			if err == nil {
				t.Fatal("Validate accepted 0")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to name %q", err, w)
				}
			}
		})
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	for flag, args := range map[string][]string{
		"start-offset":     {"--start-offset", "middle"},
		"schema":           {"--schema", "Bad-Schema"},
		"brokers":          {"--brokers", "no-port"},
		"http-addr":        {"--http-addr", "nope"},
		"max-poll-records": {"--max-poll-records", "0"},
		"writers":          {"--writers", "0"},
		"pg-max-conns":     {"--pg-max-conns", "0"},
		"session-timeout":  {"--session-timeout", "10ms"},
		"api-lookup-slots": {"--api-lookup-slots", "0"},
		"api-lookup-batch": {"--api-lookup-batch", "-1"},
	} {
		base := []string{"--postgres", "postgres://u@h/db", "--brokers", "k:9092"}
		l, err := setup(t, "", append(base, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		want := settingRef(flag)
		if err := l.validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: Validate() = %v, want it to name %s", args, err, want)
		}
	}
	// writers > pg-max-conns names writers first, as the message does.
	l, err := setup(t, "", "--postgres", "postgres://u@h/db", "--brokers", "k:9092", "--writers", "9", "--pg-max-conns", "4")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.validate(); err == nil || !strings.Contains(err.Error(), settingRef("writers")) || !strings.Contains(err.Error(), "pg-max-conns 4") {
		t.Errorf("Validate() = %v, want it to name --writers and pg-max-conns", err)
	}
}

func TestNameSettingsKeepsOtherLines(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.Int("writers", 1, "")
	err := nameSettings(fs, origins{}, errJoin("writers 0: bad", "something else: bad"))
	want := "--writers [STREAMJOIN_WRITERS]: writers 0: bad (value from the default)\nsomething else: bad"
	if err == nil || err.Error() != want {
		t.Errorf("nameSettings = %q, want %q", err, want)
	}
	plain := errJoin("nothing to name")
	if got := nameSettings(fs, origins{}, plain); got != plain {
		t.Errorf("nameSettings changed an error that names no flag: %v", got)
	}
	if nameSettings(fs, origins{}, nil) != nil {
		t.Error("nameSettings(nil) is not nil")
	}
}

func errJoin(msgs ...string) error {
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = errors.New(m)
	}
	return errors.Join(errs...)
}
