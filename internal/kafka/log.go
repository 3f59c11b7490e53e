package kafka

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
)

// newLogger returns one client's logger, to be installed both as its
// logger and as its hook (kgo.WithLogger, kgo.WithHooks). franz-go's logs go
// to logger through its kslog plugin, with franz-go's info and debug lines
// one step down: its info (joins, assignments, metadata, one line per
// produce to a new topic) is streamjoin's debug, and its per-request debug
// is below that. Its warnings and errors keep their level, except a broker
// that cannot be dialed (see dialLog): warned about once, not once per
// attempt. So the default info level shows what goes wrong, and
// --log-level debug shows the group's life.
func newLogger(logger *slog.Logger) *dialLog {
	return newDialLog(logger, time.Now)
}

// dialFailedPrefix starts the warning franz-go (pkg/kgo/broker.go,
// broker.connect) logs when a dial fails; a second variant adds a TLS hint
// after it. Its "addr" is the broker's host:port.
const dialFailedPrefix = "unable to open connection to broker"

// dialLog is the kgo.Logger of one client, and its kgo.HookBrokerConnect.
// The first failed dial to a broker address is franz-go's warning as it is;
// the next ones, until a connection to that address succeeds, are logged at
// debug with the count so far ("failed_attempts"). The first success after
// failures (a connection dialed and initialized: the connect hook without an
// error) is one info line with the count and how long the broker was
// unreachable, and a later failure warns again. Every other line passes
// through as newLogger says. It is safe for concurrent use, as franz-go
// requires.
type dialLog struct {
	inner kgo.Logger   // kslog over the demoted handler
	log   *slog.Logger // streamjoin's levels: the debug repeats, the recovery
	now   func() time.Time

	mu      sync.Mutex
	outages map[string]*outage // by broker address
}

// outage is a broker address that has not been connected to since a dial
// to it first failed.
type outage struct {
	since    time.Time
	attempts int
}

func newDialLog(logger *slog.Logger, now func() time.Time) *dialLog {
	return &dialLog{
		inner:   kslog.New(slog.New(demoted{logger.Handler()})),
		log:     logger,
		now:     now,
		outages: map[string]*outage{},
	}
}

// Level is the level franz-go logs at: that of the handler, as kslog maps
// it.
func (d *dialLog) Level() kgo.LogLevel { return d.inner.Level() }

// Log counts failed dials by the line's "addr", and hands every other line
// (and a failure without an address, which no success could end) to kslog.
func (d *dialLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if addr, ok := addrOf(keyvals); ok && strings.HasPrefix(msg, dialFailedPrefix) {
		if n := d.failed(addr); n > 1 {
			d.log.Debug(msg, append(keyvals[:len(keyvals):len(keyvals)], "failed_attempts", n)...)
			return
		}
	}
	d.inner.Log(level, msg, keyvals...)
}

// OnBrokerConnect ends the outage of meta's address, if it had one, when a
// connection to it succeeded. franz-go calls it after each connection
// attempt, dial and initialization (ApiVersions, SASL) included.
func (d *dialLog) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		return
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))) // as franz-go's "addr"
	if o, ok := d.opened(addr); ok {
		d.log.Info("kafka broker reachable again", "addr", addr,
			"failed_attempts", o.attempts, "down_for", d.now().Sub(o.since).Round(time.Millisecond))
	}
}

// failed records a failed dial to addr and returns how many failed in a row.
func (d *dialLog) failed(addr string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.outages[addr]
	if o == nil {
		o = &outage{since: d.now()}
		d.outages[addr] = o
	}
	o.attempts++
	return o.attempts
}

// opened ends addr's outage, if it had one, and returns it.
func (d *dialLog) opened(addr string) (outage, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.outages[addr]
	if o == nil {
		return outage{}, false
	}
	delete(d.outages, addr)
	return *o, true
}

// addrOf returns the value of "addr" in keyvals.
func addrOf(keyvals []any) (string, bool) {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if keyvals[i] == "addr" {
			if s, ok := keyvals[i+1].(string); ok {
				return s, true
			}
			return slog.AnyValue(keyvals[i+1]).String(), true
		}
	}
	return "", false
}

// demoted shifts levels below warn down by one slog step (4).
type demoted struct{ h slog.Handler }

func demote(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return l - 4
	}
	return l
}

func (d demoted) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, demote(l))
}

func (d demoted) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	return d.h.Handle(ctx, r)
}

func (d demoted) WithAttrs(as []slog.Attr) slog.Handler { return demoted{d.h.WithAttrs(as)} }
func (d demoted) WithGroup(name string) slog.Handler    { return demoted{d.h.WithGroup(name)} }
