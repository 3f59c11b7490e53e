package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// Distinctive secrets, grepped for in everything the binary prints.
const (
	kafkaSecret = "kafkaPa55-5eed-91c2"
	pgSecret    = "pgPa55-feed-3a7b"
)

// binary builds streamjoin: the logs go to the process's own stderr, so
// only the real binary shows everything it prints.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "streamjoin")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/streamjoin").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// assertNoSecret fails t if out shows either secret.
func assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{kafkaSecret, pgSecret} {
		if strings.Contains(out, s) {
			t.Errorf("%s shows a secret (%s):\n%s", what, s, out)
		}
	}
}

// Passwords never appear in what the binary prints: --help, a bad setting
// (from flags, the environment or the config file), a malformed DSN, a
// failed PostgreSQL connection and a rejected Kafka login, all at debug log
// level. Each case must also fail the way it is meant to, so that it
// reached the path it tests.
func TestSecretsNeverPrinted(t *testing.T) {
	bin := binary(t)
	addr, _ := testenv.Kafka(t, kfake.EnableSASL(), kfake.Superuser(kafka.SASLScramSHA256, "streamjoin", "the-right-one"), kfake.SeedTopics(1, "t"))
	in := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(in, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := filepath.Join(t.TempDir(), "streamjoin.yaml")
	if err := os.WriteFile(yaml, []byte("kafka-sasl-password: "+kafkaSecret+"\npostgres: postgres://u:"+pgSecret+"@127.0.0.1:1/db\nwriters: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pgURL := "postgres://u:" + pgSecret + "@127.0.0.1:1/db?connect_timeout=2"
	sasl := []string{"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "streamjoin"}
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		want string // in the output: the case reached its path
		ok   bool   // exits 0
	}{
		{name: "help", args: []string{"run", "--help", "--kafka-sasl-password", kafkaSecret, "--postgres", pgURL},
			env: []string{"STREAMJOIN_KAFKA_SASL_PASSWORD=" + kafkaSecret}, want: "--kafka-sasl-password", ok: true},
		{name: "bad setting, secrets from flags", args: append([]string{"run", "--postgres", pgURL, "--brokers", "127.0.0.1:1", "--kafka-sasl-password", kafkaSecret, "--writers", "0", "--log-level", "debug"}, sasl...),
			want: "--writers"},
		{name: "bad setting, secrets from the environment", args: []string{"run", "--brokers", "127.0.0.1:1", "--kafka-sasl-mechanism", "nope"},
			env: []string{"STREAMJOIN_KAFKA_SASL_PASSWORD=" + kafkaSecret, "STREAMJOIN_POSTGRES=" + pgURL, "STREAMJOIN_KAFKA_SASL_USERNAME=u"}, want: "--kafka-sasl-mechanism"},
		{name: "bad setting, secrets from the config file", args: append([]string{"run", "--brokers", "127.0.0.1:1", "--config", yaml}, sasl...),
			want: "--writers"},
		{name: "malformed URL DSN", args: []string{"migrate", "--postgres", "postgres://u:" + pgSecret + "@127.0.0.1:notaport/db"},
			want: "--postgres"},
		{name: "malformed key=value DSN", args: []string{"migrate", "--postgres", "host=127.0.0.1 port=x user=u password=" + pgSecret},
			want: "--postgres"},
		{name: "PostgreSQL unreachable", args: []string{"migrate", "--postgres", pgURL, "--log-level", "debug"},
			want: "failed to connect"},
		{name: "Kafka rejects the password", args: append([]string{"produce", "--brokers", addr, "--topic", "t", "--file", in, "--delivery-timeout", "2s", "--log-level", "debug"}, sasl...),
			env: []string{"STREAMJOIN_KAFKA_SASL_PASSWORD=" + kafkaSecret}, want: "SASL authentication failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			out := stdout.String() + stderr.String()
			if (err == nil) != tt.ok {
				t.Fatalf("exit error %v, want ok=%v\n%s", err, tt.ok, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output does not say %q: the case did not reach its path\n%s", tt.want, out)
			}
			assertNoSecret(t, "output", out)
		})
	}
}

// `streamjoin run` against a secured Kafka (SCRAM-SHA-512 over TLS, the
// password from the environment) and a PostgreSQL that accepts only TLS
// (verify-full): a user event produced to the cluster is served over HTTP.
// Its debug-level start-up and run logs show neither password.
func TestRunOverSASLAndTLS(t *testing.T) {
	bin := binary(t)
	ca := testenv.NewCA(t, "secured")
	broker := ca.Issue(t, "broker", "127.0.0.1")
	addr, _ := testenv.Kafka(t, kfake.EnableSASL(), kfake.Superuser(kafka.SASLScramSHA512, "streamjoin", kafkaSecret),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{broker.TLS}}))
	pgPort := tlsPostgres(t, ca)
	dsn := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=verify-full&sslrootcert=%s", pgSecret, pgPort, url.QueryEscape(ca.CertFile))
	httpPort, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--brokers", addr,
		"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "streamjoin",
		"--kafka-tls", "--kafka-tls-ca-file", ca.CertFile,
		"--postgres", dsn, "--schema", "secured", "--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--log-level", "debug")
	cmd.Env = append(os.Environ(), "STREAMJOIN_KAFKA_SASL_PASSWORD="+kafkaSecret)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()

	// Produce once the process is ready: it has created the topics, which a
	// producer auto-creating them at the same moment can race.
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", httpPort)
	for {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("streamjoin run exited before it was ready: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("streamjoin run was not ready within the deadline:\n%s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	conn, err := kafka.New(kafka.Config{
		Brokers: []string{addr},
		SASL:    kafka.SASLConfig{Mechanism: kafka.SASLScramSHA512, Username: "streamjoin", Password: kafkaSecret},
		TLS:     kafka.TLSConfig{Enable: true, CAFile: ca.CertFile},
	}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := conn.NewClient("producer", kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	event := `{"id":"u1","event_type":"User Created","username":"Kim","user_email":"kim@x.org","user_type":"Admin","organization_name":"Nostromo","received_at":"2021-05-01 10:00:00"}`
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "user_events", Key: []byte("u1"), Value: []byte(event)}).FirstErr(); err != nil {
		t.Fatalf("producing over SASL and TLS: %v", err)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/users/Kim", httpPort)
	var body string
	for {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"username":"Kim"`) {
				body = string(b)
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("run exited (%v) before serving the user\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("the user produced over SASL/TLS was not served within the deadline\n%s", stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Errorf("run after SIGTERM: %v", err)
	}
	if !strings.Contains(stderr.String(), "level=DEBUG") {
		t.Fatalf("no debug lines in the log: the grep below would prove nothing\n%s", stderr.String())
	}
	assertNoSecret(t, "run's output", stdout.String()+stderr.String()+body)
}
