package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/app"
)

func setup(t *testing.T, yaml string, args ...string) (*app.Config, error) {
	t.Helper()
	var cfg app.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	appFlags(fs, &cfg, ":8080")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	path := ""
	if yaml != "" {
		path = filepath.Join(t.TempDir(), "streamjoin.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &cfg, applyConfig(fs, path)
}

// Not parallel: these tests set environment variables.
func TestPrecedenceFlagsThenEnvThenFile(t *testing.T) {
	t.Setenv("STREAMJOIN_GROUP", "from-env")
	t.Setenv("STREAMJOIN_SCHEMA", "env_schema")
	yaml := "group: from-file\nschema: file_schema\nhttp-addr: ':9999'\nbrokers: [a:1, b:2]\nquery-timeout: 3s\n"
	cfg, err := setup(t, yaml, "--schema", "flag_schema")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Schema != "flag_schema" {
		t.Errorf("schema = %q: a flag must beat env and file", cfg.Store.Schema)
	}
	if cfg.Ingest.Group != "from-env" {
		t.Errorf("group = %q: env must beat the file", cfg.Ingest.Group)
	}
	if cfg.API.Addr != ":9999" || cfg.Store.QueryTimeout != 3*time.Second {
		t.Errorf("file values not applied: addr %q, query timeout %s", cfg.API.Addr, cfg.Store.QueryTimeout)
	}
	if strings.Join(cfg.Ingest.Brokers, ",") != "a:1,b:2" {
		t.Errorf("brokers = %v, want the file's list", cfg.Ingest.Brokers)
	}
	if cfg.Ingest.Partitions != 6 || cfg.Ingest.UserTopic != "user_events" {
		t.Errorf("defaults lost: %+v", cfg.Ingest)
	}
}

func TestEnvList(t *testing.T) {
	t.Setenv("STREAMJOIN_BROKERS", "k1:9092, k2:9092")
	cfg, err := setup(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Ingest.Brokers, ",") != "k1:9092,k2:9092" {
		t.Errorf("brokers = %v", cfg.Ingest.Brokers)
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	for _, tt := range []struct {
		name, env, yaml string
		args            []string
		want            string
	}{
		{name: "bad env duration", env: "STREAMJOIN_QUERY_TIMEOUT=soon", want: "STREAMJOIN_QUERY_TIMEOUT"},
		{name: "bad env int", env: "STREAMJOIN_PARTITIONS=six", want: "--partitions"},
		{name: "bad file value", yaml: "max-poll-records: lots\n", want: "max-poll-records"},
		{name: "unknown file key", yaml: "brokerz: [a:1]\n", want: "unknown setting(s) brokerz"},
		{name: "bad flag", args: []string{"--pg-max-conns", "x"}, want: "pg-max-conns"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				k, v, _ := strings.Cut(tt.env, "=")
				t.Setenv(k, v)
			}
			_, err := setup(t, tt.yaml, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to name %q", err, tt.want)
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
		"pg-max-conns":     {"--writers", "9", "--pg-max-conns", "4"},
		"session-timeout":  {"--session-timeout", "10ms"},
		"api-lookup-slots": {"--api-lookup-slots", "0"},
		"api-lookup-batch": {"--api-lookup-batch", "-1"},
	} {
		base := []string{"--postgres", "postgres://u@h/db", "--brokers", "k:9092"}
		cfg, err := setup(t, "", append(base, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%v: Validate() = %v, want it to name %s", args, err, flag)
		}
	}
}

func TestRunRejectsBadConfigAtStart(t *testing.T) {
	var out, errOut strings.Builder
	code := Main([]string{"run", "--brokers", "k:9092", "--postgres", "postgres://u@h/db", "--start-offset", "middle"}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "start-offset") {
		t.Errorf("exit %d, stderr %q: want a non-zero exit naming start-offset", code, errOut.String())
	}
	code = Main([]string{"run", "--brokers", "k:9092"}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "postgres") {
		t.Errorf("exit %d, stderr %q: want a non-zero exit naming postgres", code, errOut.String())
	}
}
