// Package kafka builds every Kafka client streamjoin uses from one connection
// config: seed brokers, client id, logging through franz-go's kslog plugin
// and metrics through its kprom plugin. Authentication and TLS belong here
// too, so that securing the connection is a change in one place.
//
// Callers add only what their role needs (a consumer group, a partitioner,
// partitions to read) as kgo options.
package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/plugin/kprom"
)

// Config is how to reach the cluster. The zero value is not usable: Brokers
// is required.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// ClientID is sent to the brokers. Default "streamjoin".
	ClientID string
	// SASL authenticates every connection. Zero: none.
	SASL SASLConfig
	// TLS encrypts every connection. Zero: plaintext.
	TLS TLSConfig
}

// DefaultClientID is the client id when none is set.
const DefaultClientID = "streamjoin"

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	return c
}

// Validate reports the first bad setting, named by its flag. It also reads
// the files the SASL and TLS settings name (password, CA, client
// certificate), so that a bad path or a bad PEM fails at start.
func (c Config) Validate() error {
	_, _, err := c.security()
	return err
}

// security validates c and returns what its SASL and TLS settings build:
// nil for each that is off.
func (c Config) security() (sasl.Mechanism, *tls.Config, error) {
	if err := c.validateBrokers(); err != nil {
		return nil, nil, err
	}
	if err := c.SASL.validate(); err != nil {
		return nil, nil, err
	}
	if err := c.TLS.validate(); err != nil {
		return nil, nil, err
	}
	mech, err := c.SASL.mechanism()
	if err != nil {
		return nil, nil, err
	}
	tc, err := c.TLS.config()
	if err != nil {
		return nil, nil, err
	}
	return mech, tc, nil
}

func (c Config) validateBrokers() error {
	if len(c.Brokers) == 0 {
		return errors.New("brokers: at least one broker is required")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("brokers: %q is not host:port", b)
		}
	}
	return nil
}

// Connector creates Kafka clients that share one connection config, logger
// and metrics registry. It is safe for concurrent use.
type Connector struct {
	cfg Config
	log *slog.Logger
	reg prometheus.Registerer

	mech sasl.Mechanism // nil: no SASL
	tls  *tls.Config    // nil: plaintext

	saslLogged atomic.Bool // a SASL rejection was logged (saslLog)

	mu      sync.Mutex
	metered map[string]bool // roles with a live client that carries metrics
}

// New validates cfg, reads the files its SASL and TLS settings name (once:
// a password or certificate changed later is not picked up) and returns a
// Connector. It does not connect. logger receives franz-go's logs (nil:
// discarded), its info and debug one level down (newLogger); reg, if not
// nil, receives each client's kprom metrics, labelled client="<role>".
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Connector, error) {
	cfg = cfg.WithDefaults()
	mech, tc, err := cfg.security()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if mech != nil && mech.Name() == SASLPlain && tc == nil {
		logger.Warn("SASL PLAIN without TLS sends the Kafka password in clear text; add --kafka-tls")
	}
	if tc != nil && tc.InsecureSkipVerify {
		logger.Warn("Kafka TLS certificates are not verified (--kafka-tls-insecure-skip-verify): anyone on the path can pose as the broker")
	}
	return &Connector{cfg: cfg, log: logger, reg: reg, mech: mech, tls: tc, metered: map[string]bool{}}, nil
}

// Config returns the connection config, with defaults filled.
func (c *Connector) Config() Config { return c.cfg }

// Brokers returns the seed brokers.
func (c *Connector) Brokers() []string { return c.cfg.Brokers }

// opts returns the connection options every client gets, for a role (a
// short name such as "consumer" or "dlq-reader" that labels its logs and
// metrics), followed by extra.
func (c *Connector) opts(role string, extra ...kgo.Opt) []kgo.Opt {
	kl := newLogger(c.log.With("kafka_client", role))
	base := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ClientID(c.cfg.ClientID),
		kgo.WithLogger(kl),
		kgo.WithHooks(kl), // ends its dial outages (dialLog)
	}
	if c.tls != nil {
		base = append(base, kgo.DialTLSConfig(c.tls)) // cloned per dial
	}
	if c.mech != nil {
		base = append(base, kgo.SASL(c.mech), kgo.WithHooks(saslLog{c, &c.saslLogged}))
	}
	return append(base, extra...)
}

// NewClient returns a new client for role, with the connection options and
// opts (which may override them). The caller owns it and must Close it.
//
// The first live client of each role carries kprom metrics, labelled with
// the role; a second client of a role that is already metered (a
// short-lived reader opened while another is open) carries none, so that
// the two never register the same series.
func (c *Connector) NewClient(role string, opts ...kgo.Opt) (*kgo.Client, error) {
	all := c.opts(role, opts...)
	m := c.meter(role)
	if m != nil {
		all = append(all, kgo.WithHooks(m, released{c, role}))
	}
	cl, err := kgo.NewClient(all...)
	if err != nil {
		if m != nil { // the slot is this client's, not a live one's
			c.release(role)
		}
		return nil, fmt.Errorf("creating kafka client (%s): %w", role, err)
	}
	return cl, nil
}

func (c *Connector) meter(role string) *kprom.Metrics {
	if c.reg == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.metered[role] {
		return nil
	}
	c.metered[role] = true
	return kprom.NewMetrics("streamjoin_kafka",
		kprom.Registerer(c.reg),
		kprom.WithStaticLabel(prometheus.Labels{"client": role}),
		kprom.FetchAndProduceDetail(kprom.ByTopic),
	)
}

func (c *Connector) release(role string) {
	c.mu.Lock()
	delete(c.metered, role)
	c.mu.Unlock()
}

// released frees a role's metrics slot when its client closes; kprom
// unregisters the series in its own OnClientClosed, which runs first.
type released struct {
	c    *Connector
	role string
}

func (r released) OnClientClosed(*kgo.Client) { r.c.release(r.role) }
