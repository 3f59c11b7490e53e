package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms streamjoin supports, as Kafka names them.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLConfig is how clients authenticate. The zero value authenticates not
// at all.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any case).
	// Empty: no SASL.
	Mechanism string
	// Username is required with a mechanism.
	Username string
	// Password is the password; exactly one of Password and PasswordFile is
	// required with a mechanism.
	Password Secret
	// PasswordFile names a file holding the password (a mounted Kubernetes
	// Secret, say), read when the Connector is created. One trailing line
	// break is removed.
	PasswordFile string
}

// TLSConfig is how clients encrypt and verify the connection. The zero value
// is plaintext.
type TLSConfig struct {
	// Enable dials the brokers over TLS. The other fields need it.
	Enable bool
	// CAFile is a PEM bundle of the CAs that sign the brokers' certificates.
	// Empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that require mutual TLS. Both or neither.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must carry. Empty:
	// the host of each broker address, which is right unless the brokers
	// are reached through an address their certificates do not name.
	ServerName string
	// InsecureSkipVerify accepts any certificate from the brokers. The
	// connection is then encrypted but not authenticated: anyone on the path
	// can pose as the broker and read the SASL password (PLAIN) and the
	// data. For a test cluster with a throwaway certificate only.
	InsecureSkipVerify bool
}

// Secret is a string that never prints: fmt, slog and JSON show it as
// "[redacted]" (or "" when empty), so a config printed whole cannot leak it.
// Reveal returns the value.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue covers slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText covers encoding/json and YAML.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// validate checks the settings without touching files, naming each by its
// flag.
func (c SASLConfig) validate() error {
	if c.Mechanism == "" {
		if c.Username != "" || c.Password != "" || c.PasswordFile != "" {
			return errors.New("kafka-sasl-mechanism: required when a SASL username or password is set: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		return nil
	}
	switch strings.ToUpper(c.Mechanism) {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return fmt.Errorf("kafka-sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.Mechanism)
	}
	if c.Username == "" {
		return fmt.Errorf("kafka-sasl-username: required with kafka-sasl-mechanism %s", c.Mechanism)
	}
	switch {
	case c.Password != "" && c.PasswordFile != "":
		return errors.New("kafka-sasl-password-file: set together with kafka-sasl-password: give one, not both")
	case c.Password == "" && c.PasswordFile == "":
		return fmt.Errorf("kafka-sasl-password: required with kafka-sasl-mechanism %s (or kafka-sasl-password-file)", c.Mechanism)
	}
	return nil
}

// mechanism reads the password file, if any, and returns the SASL
// mechanism; nil when SASL is off.
func (c SASLConfig) mechanism() (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		return nil, nil
	}
	pass := c.Password.Reveal()
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			// The path is not secret; the *PathError names it.
			return nil, fmt.Errorf("kafka-sasl-password-file: %w", err)
		}
		pass = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pass == "" {
			return nil, fmt.Errorf("kafka-sasl-password-file %s: the file is empty", c.PasswordFile)
		}
	}
	switch strings.ToUpper(c.Mechanism) {
	case SASLPlain:
		return plain.Auth{User: c.Username, Pass: pass}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: c.Username, Pass: pass}.AsSha256Mechanism(), nil
	default: // validated: SCRAM-SHA-512
		return scram.Auth{User: c.Username, Pass: pass}.AsSha512Mechanism(), nil
	}
}

// validate checks the settings without touching files, naming each by its
// flag.
func (c TLSConfig) validate() error {
	if !c.Enable {
		for _, s := range []struct{ flag, val string }{
			{"kafka-tls-ca-file", c.CAFile},
			{"kafka-tls-cert-file", c.CertFile},
			{"kafka-tls-key-file", c.KeyFile},
			{"kafka-tls-server-name", c.ServerName},
		} {
			if s.val != "" {
				return fmt.Errorf("%s: set, but TLS is off: add kafka-tls", s.flag)
			}
		}
		if c.InsecureSkipVerify {
			return errors.New("kafka-tls-insecure-skip-verify: set, but TLS is off: add kafka-tls")
		}
		return nil
	}
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		return errors.New("kafka-tls-key-file: required with kafka-tls-cert-file (mutual TLS needs both)")
	case c.CertFile == "" && c.KeyFile != "":
		return errors.New("kafka-tls-cert-file: required with kafka-tls-key-file (mutual TLS needs both)")
	}
	return nil
}

// config reads the CA and client certificate files and returns the TLS
// config; nil when TLS is off.
func (c TLSConfig) config() (*tls.Config, error) {
	if !c.Enable {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as insecure
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka-tls-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka-tls-ca-file %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka-tls-cert-file %s with kafka-tls-key-file %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
