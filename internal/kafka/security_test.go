package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

const (
	saslUser = "streamjoin"
	// Distinctive, so that a test can grep for it in errors.
	rightPass = "right-Pa55-7f3c"
	wrongPass = "wrong-Pa55-91ae"
)

// checkWithin runs conn.Check under a deadline far above how long a
// rejection may take, and fails the test if it took the deadline: a
// rejection must end Check at once, not after a retry loop gave up.
func checkWithin(t *testing.T, conn *Connector) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := conn.Check(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Check ran until its deadline (%v): a rejection must end it at once", err)
	}
	return err
}

// Each mechanism authenticates with the right password, end to end (a
// record produced and read back), and fails at once with an error that says
// SASL authentication failed, and not the password, with a wrong one.
func TestSASL(t *testing.T) {
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
				kfake.Superuser(mech, saslUser, rightPass), kfake.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			cfg := Config{Brokers: cluster.ListenAddrs(), SASL: SASLConfig{Mechanism: strings.ToLower(mech), Username: saslUser, Password: rightPass}}

			conn, err := New(cfg, testenv.Logger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkWithin(t, conn); err != nil {
				t.Fatalf("right password: %v", err)
			}
			roundTrip(t, conn)

			cfg.SASL.Password = wrongPass
			conn, err = New(cfg, testenv.Logger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = checkWithin(t, conn)
			if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "SASL authentication failed") {
				t.Fatalf("wrong password: err = %v, want ErrAuthFailed saying so", err)
			}
			if strings.Contains(err.Error(), wrongPass) || strings.Contains(err.Error(), rightPass) {
				t.Fatalf("error %q shows a password", err)
			}
		})
	}
}

// The password can come from a file (a mounted secret), its trailing line
// break removed.
func TestSASLPasswordFile(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(SASLScramSHA512, saslUser, rightPass))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(rightPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := New(Config{Brokers: cluster.ListenAddrs(), SASL: SASLConfig{Mechanism: SASLScramSHA512, Username: saslUser, PasswordFile: file}}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkWithin(t, conn); err != nil {
		t.Fatal(err)
	}
}

// TLS: the right CA succeeds; a wrong CA, or a name the certificate does
// not carry, fails at once naming the certificate problem and the setting;
// --kafka-tls-server-name fixes the latter.
func TestTLS(t *testing.T) {
	ca := testenv.NewCA(t, "kafka")
	other := testenv.NewCA(t, "other")
	srv := ca.Issue(t, "broker", "broker.internal") // not 127.0.0.1
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	for _, tt := range []struct {
		name string
		tls  TLSConfig
		want []string // substrings of the error; none: success
	}{
		{"right CA and server name", TLSConfig{Enable: true, CAFile: ca.CertFile, ServerName: "broker.internal"}, nil},
		{"wrong CA", TLSConfig{Enable: true, CAFile: other.CertFile, ServerName: "broker.internal"},
			[]string{"kafka TLS", "certificate", "unknown authority", "--kafka-tls-ca-file"}},
		{"name not in the certificate", TLSConfig{Enable: true, CAFile: ca.CertFile},
			[]string{"kafka TLS", "certificate", "127.0.0.1", "--kafka-tls-server-name"}},
		{"insecure skip verify", TLSConfig{Enable: true, InsecureSkipVerify: true}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := New(Config{Brokers: cluster.ListenAddrs(), TLS: tt.tls}, testenv.Logger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = checkWithin(t, conn)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !Rejected(err) {
				t.Fatalf("err = %v, want a rejection", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want it to say %q", err, w)
				}
			}
		})
	}
}

// Mutual TLS: a broker that requires a client certificate accepts one its
// CA signed and refuses a client without one, at once.
func TestMutualTLS(t *testing.T) {
	ca := testenv.NewCA(t, "kafka")
	srv := ca.Issue(t, "broker", "127.0.0.1")
	client := ca.Issue(t, "client")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{srv.TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool,
	}), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	with := TLSConfig{Enable: true, CAFile: ca.CertFile, CertFile: client.CertFile, KeyFile: client.KeyFile}
	conn, err := New(Config{Brokers: cluster.ListenAddrs(), TLS: with}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkWithin(t, conn); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	roundTrip(t, conn)

	without := TLSConfig{Enable: true, CAFile: ca.CertFile}
	conn, err = New(Config{Brokers: cluster.ListenAddrs(), TLS: without}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = checkWithin(t, conn)
	if err == nil || !Rejected(err) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a client certificate: err = %v, want a rejection naming the certificate", err)
	}
}

// SASL over TLS, as a managed cluster runs it: a producer and a group
// consumer, each from the Connector, exchange a record.
func TestSASLOverTLSGroupConsumer(t *testing.T) {
	ca := testenv.NewCA(t, "kafka")
	srv := ca.Issue(t, "broker", "127.0.0.1")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser(SASLScramSHA512, saslUser, rightPass),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}}), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	conn, err := New(Config{
		Brokers: cluster.ListenAddrs(),
		SASL:    SASLConfig{Mechanism: SASLScramSHA512, Username: saslUser, Password: rightPass},
		TLS:     TLSConfig{Enable: true, CAFile: ca.CertFile},
	}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn, kgo.ConsumerGroup("secured"))
}

// roundTrip produces a record through a client of conn and reads it back
// with another, which gets extra (a consumer group, say) or else reads the
// partition directly.
func roundTrip(t *testing.T, conn *Connector, extra ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic := "secured-" + strings.ReplaceAll(t.Name(), "/", "-")
	p, err := conn.NewClient("producer", kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	opts := append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, extra...)
	c, err := conn.NewClient("consumer", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fs := c.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("consuming: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("consumed %d records, want the one produced", len(recs))
	}
}
