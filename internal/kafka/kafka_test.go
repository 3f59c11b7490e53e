package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

// sec is a Config with valid brokers and the given security settings.
func sec(s SASLConfig, tc TLSConfig) Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, SASL: s, TLS: tc}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	empty := filepath.Join(dir, "empty")
	pwFile := filepath.Join(dir, "password")
	for _, f := range []string{empty, pwFile} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ca := testenv.NewCA(t, "validate")
	pair := ca.Issue(t, "client")
	for _, tc := range []struct {
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{Config{Brokers: []string{"127.0.0.1:9092"}}, ""},
		{Config{}, "brokers: at least one broker"},
		{Config{Brokers: []string{"kafka1"}}, `brokers: "kafka1" is not host:port`},
		{sec(SASLConfig{Mechanism: "scram-sha-512", Username: "u", Password: "p"}, TLSConfig{}), ""},
		{sec(SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}, TLSConfig{}), `kafka-sasl-mechanism "GSSAPI": want PLAIN`},
		{sec(SASLConfig{Mechanism: "PLAIN", Password: "p"}, TLSConfig{}), "kafka-sasl-username: required"},
		{sec(SASLConfig{Mechanism: "PLAIN", Username: "u"}, TLSConfig{}), "kafka-sasl-password: required"},
		{sec(SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p", PasswordFile: pwFile}, TLSConfig{}), "kafka-sasl-password-file: set together with kafka-sasl-password"},
		{sec(SASLConfig{Username: "u", Password: "p"}, TLSConfig{}), "kafka-sasl-mechanism: required"},
		{sec(SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: missing}, TLSConfig{}), "kafka-sasl-password-file: open " + missing},
		{sec(SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: empty}, TLSConfig{}), "kafka-sasl-password-file " + empty + ": the file is empty"},
		{sec(SASLConfig{}, TLSConfig{Enable: true}), ""},
		{sec(SASLConfig{}, TLSConfig{Enable: true, CAFile: ca.CertFile, CertFile: pair.CertFile, KeyFile: pair.KeyFile}), ""},
		{sec(SASLConfig{}, TLSConfig{CAFile: ca.CertFile}), "kafka-tls-ca-file: set, but TLS is off"},
		{sec(SASLConfig{}, TLSConfig{InsecureSkipVerify: true}), "kafka-tls-insecure-skip-verify: set, but TLS is off"},
		{sec(SASLConfig{}, TLSConfig{Enable: true, CertFile: pair.CertFile}), "kafka-tls-key-file: required with kafka-tls-cert-file"},
		{sec(SASLConfig{}, TLSConfig{Enable: true, KeyFile: pair.KeyFile}), "kafka-tls-cert-file: required with kafka-tls-key-file"},
		{sec(SASLConfig{}, TLSConfig{Enable: true, CAFile: missing}), "kafka-tls-ca-file: open " + missing},
		{sec(SASLConfig{}, TLSConfig{Enable: true, CAFile: empty}), "kafka-tls-ca-file " + empty + ": no PEM certificate"},
		{sec(SASLConfig{}, TLSConfig{Enable: true, CertFile: pair.CertFile, KeyFile: ca.CertFile}), "kafka-tls-cert-file " + pair.CertFile},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// Every client carries the connection config; the first live client of a
// role carries kprom metrics labelled with it, a concurrent second one
// carries none (no duplicate registration), and closing frees the role.
func TestConnectorMetrics(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	reg := prometheus.NewRegistry()
	conn, err := New(Config{Brokers: cluster.ListenAddrs()}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.Config().ClientID; got != DefaultClientID {
		t.Errorf("client id = %q, want the default %q", got, DefaultClientID)
	}
	a, err := conn.NewClient("consumer")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	const connects = "streamjoin_kafka_connects_total"
	if n, err := testutil.GatherAndCount(reg, connects); err != nil || n == 0 {
		t.Fatalf("%s series after a ping = %d (%v), want at least 1", connects, n, err)
	}
	b, err := conn.NewClient("consumer") // same role while a is open: no metrics, no panic
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	a.Close()
	if n, err := testutil.GatherAndCount(reg, connects); err != nil || n != 0 {
		t.Fatalf("%s series after every client closed = %d (%v), want 0", connects, n, err)
	}
	c, err := conn.NewClient("consumer") // the role is free again
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, connects); err != nil || n == 0 {
		t.Fatalf("%s series for a new client of a released role = %d (%v), want at least 1", connects, n, err)
	}
}

// A Config printed whole, by fmt, slog or JSON, never shows the password.
func TestSecretNeverPrints(t *testing.T) {
	const pass = "s3cret-7a1d"
	cfg := Config{Brokers: []string{"127.0.0.1:9092"}, SASL: SASLConfig{Mechanism: SASLPlain, Username: "u", Password: pass}}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "kafka", cfg, "password", cfg.SASL.Password)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "kafka", cfg, "password", cfg.SASL.Password)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg.SASL.Password),
		fmt.Sprintf("%q", cfg.SASL.Password), logged.String(), string(js),
	} {
		if strings.Contains(out, pass) {
			t.Errorf("%s: shows the password", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s: want [redacted] where the password is", out)
		}
	}
	if cfg.SASL.Password.Reveal() != pass {
		t.Fatal("Reveal does not return the password")
	}
}
