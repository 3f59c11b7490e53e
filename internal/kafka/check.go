package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamjoin/streamjoin/internal/retry"
)

// ErrAuthFailed marks an error of a broker rejecting the client's SASL
// authentication: a wrong username, password or mechanism. Retrying cannot
// fix it.
var ErrAuthFailed = errors.New("kafka SASL authentication failed")

// Rejected reports whether err is the brokers refusing the client's
// credentials or the client refusing the brokers' certificate (or the
// brokers the client's): errors that retrying cannot fix, so a caller
// waiting for the brokers should give up on them.
func Rejected(err error) bool {
	if errors.Is(err, ErrAuthFailed) ||
		errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) {
		return true
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return remoteTLSAlert(err) || errors.As(err, &verify) ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// remoteTLSAlert reports whether err is a TLS alert the broker sent, such
// as "certificate required" or "unknown certificate authority": crypto/tls
// reports one as a *net.OpError "remote error" around an unexported type.
func remoteTLSAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && strings.HasPrefix(op.Err.Error(), "tls: ")
}

// Check connects to the brokers as every client does (TLS, SASL) and
// returns nil once one answers a metadata request. It blocks while the
// brokers are unreachable, retrying with backoff and logging each new error
// once, until ctx ends. A rejection (see Rejected) is returned at once,
// naming the setting to fix: a wrong password is an error at start, not an
// endless retry. It is safe for concurrent use.
func (c *Connector) Check(ctx context.Context) error {
	watch := &saslWatch{}
	cl, err := kgo.NewClient(c.opts("check", kgo.WithHooks(watch))...)
	if err != nil {
		return fmt.Errorf("creating kafka client (check): %w", err)
	}
	defer cl.Close()
	return retry.Do(ctx, retry.Policy{Initial: 250 * time.Millisecond, Max: 5 * time.Second}, c.log,
		fmt.Sprintf("connecting to kafka at %v", c.cfg.Brokers), func() error {
			pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			err := cl.Ping(pctx)
			switch {
			case err == nil:
				return nil
			case watch.failed.Load() || errors.Is(err, ErrAuthFailed):
				return retry.Permanent(c.authError(err))
			case Rejected(err):
				return retry.Permanent(c.rejectedError(err))
			}
			return err
		})
}

// authError explains a SASL failure; the password is never part of it.
func (c *Connector) authError(err error) error {
	if errors.Is(err, ErrAuthFailed) {
		return err
	}
	return fmt.Errorf("%w: the brokers at %v rejected user %q with %s: check --kafka-sasl-username, the password and --kafka-sasl-mechanism: %w",
		ErrAuthFailed, c.cfg.Brokers, c.cfg.SASL.Username, c.mechName(), err)
}

func (c *Connector) rejectedError(err error) error {
	switch {
	case remoteTLSAlert(err):
		return fmt.Errorf("kafka TLS: the brokers at %v refused the connection (a client certificate missing or not trusted? see --kafka-tls-cert-file): %w", c.cfg.Brokers, err)
	case c.tls != nil && !errors.Is(err, kerr.SaslAuthenticationFailed) && !errors.Is(err, kerr.UnsupportedSaslMechanism) && !errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("kafka TLS: the certificate of the brokers at %v is not trusted (check --kafka-tls-ca-file and --kafka-tls-server-name): %w", c.cfg.Brokers, err)
	}
	return c.authError(err)
}

func (c *Connector) mechName() string {
	if c.mech == nil {
		return "no SASL mechanism"
	}
	return c.mech.Name()
}

// saslWatch records that a connection failed while authenticating: a broker
// that rejects credentials may close the connection rather than answer with
// an error code, which the client reports as a bare EOF.
type saslWatch struct{ failed atomic.Bool }

func (w *saslWatch) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil && (key == int16(kmsg.SASLAuthenticate) || key == int16(kmsg.SASLHandshake)) {
		w.failed.Store(true)
	}
}

// saslLog logs once per Connector, at error level, that the brokers
// rejected the credentials, for clients that retry without ever saying why
// (franz-go's own line shows only EOF).
type saslLog struct {
	c      *Connector
	logged *atomic.Bool
}

func (s saslLog) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil || (key != int16(kmsg.SASLAuthenticate) && key != int16(kmsg.SASLHandshake)) {
		return
	}
	if s.logged.CompareAndSwap(false, true) {
		s.c.log.Error("kafka SASL authentication failed: check --kafka-sasl-username, the password and --kafka-sasl-mechanism (logged once)",
			slog.String("broker", fmt.Sprintf("%s:%d", meta.Host, meta.Port)),
			slog.String("user", s.c.cfg.SASL.Username),
			slog.String("mechanism", s.c.mechName()),
			slog.Any("err", err))
	}
}
