package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

// Every command that talks to Kafka has the SASL and TLS settings, and a bad
// one fails at start naming the flag, its variable and where the value came
// from; a file the settings name is read then, so a bad path fails at start
// too. Nothing reaches a broker: the one given is unreachable.
//
// Not parallel: it sets environment variables.
func TestSecuredSettingsRejectedAtStart(t *testing.T) {
	const (
		dsn    = "postgres://u@127.0.0.1:1/db"
		broker = "127.0.0.1:1"
	)
	in := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(in, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	client := testenv.NewCA(t, "cli").Issue(t, "client")
	commands := map[string][]string{
		"run":        {"run", "--postgres", dsn, "--brokers", broker},
		"produce":    {"produce", "--brokers", broker, "--topic", "t", "--file", in},
		"gen":        {"gen", "--brokers", broker},
		"dlq list":   {"dlq", "list", "--brokers", broker, "--topic", "t.dlq"},
		"dlq replay": {"dlq", "replay", "--brokers", broker, "--topic", "t.dlq"},
		"watch":      {"watch", "--brokers", broker, "--dir", t.TempDir(), "--topic", "t"},
	}
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		yaml string
		flag string // the setting the error must name
		from string // where it must say the value came from
	}{
		{name: "mechanism from env", env: []string{"STREAMJOIN_KAFKA_SASL_MECHANISM=GSSAPI", "STREAMJOIN_KAFKA_SASL_USERNAME=u", "STREAMJOIN_KAFKA_SASL_PASSWORD=p"},
			flag: "kafka-sasl-mechanism", from: "STREAMJOIN_KAFKA_SASL_MECHANISM"},
		{name: "username missing", args: []string{"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-password", "p"},
			flag: "kafka-sasl-username", from: "the default"},
		{name: "password file missing, from the config file", args: []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"},
			yaml: "kafka-sasl-password-file: " + missing + "\n", flag: "kafka-sasl-password-file", from: "config file key kafka-sasl-password-file"},
		{name: "CA file missing", args: []string{"--kafka-tls", "--kafka-tls-ca-file", missing},
			flag: "kafka-tls-ca-file", from: "the command line"},
		{name: "CA file without TLS, from env", env: []string{"STREAMJOIN_KAFKA_TLS_CA_FILE=" + client.CertFile},
			flag: "kafka-tls-ca-file", from: "STREAMJOIN_KAFKA_TLS_CA_FILE"},
		{name: "certificate without key", args: []string{"--kafka-tls", "--kafka-tls-cert-file", client.CertFile},
			flag: "kafka-tls-key-file", from: "the default"},
		{name: "unparsable bool from env", env: []string{"STREAMJOIN_KAFKA_TLS=maybe"},
			flag: "kafka-tls", from: "STREAMJOIN_KAFKA_TLS"},
		{name: "unparsable bool on the command line", args: []string{"--kafka-tls-insecure-skip-verify=maybe"},
			flag: "kafka-tls-insecure-skip-verify", from: "the command line"},
	} {
		for cmd, base := range commands {
			t.Run(tt.name+"/"+cmd, func(t *testing.T) {
				setenv(t, tt.env...)
				args := append(append([]string{}, base...), tt.args...)
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
				for _, want := range []string{"--" + tt.flag + " ", envName(tt.flag), "from " + tt.from} {
					if !strings.Contains(stderr, want) {
						t.Errorf("stderr %q: want it to name %q", stderr, want)
					}
				}
			})
		}
	}
}
