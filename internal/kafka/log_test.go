package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franz-go's info is streamjoin's debug and its debug is quieter still;
// warnings and errors pass as they are, and kgo is told the level to log at.
func TestLoggerDemotesFranzGoChatter(t *testing.T) {
	for _, tt := range []struct {
		level      slog.Level
		kgoLevel   kgo.LogLevel
		want, drop []string
	}{
		{slog.LevelInfo, kgo.LogLevelWarn, []string{"warn-line", "error-line", "kafka_client=x"}, []string{"info-line", "debug-line"}},
		{slog.LevelDebug, kgo.LogLevelInfo, []string{"info-line", "warn-line", "level=DEBUG msg=info-line"}, []string{"debug-line"}},
		{slog.LevelDebug - 4, kgo.LogLevelDebug, []string{"debug-line", "info-line"}, nil},
		{slog.LevelError, kgo.LogLevelError, []string{"error-line"}, []string{"warn-line"}},
	} {
		var buf bytes.Buffer
		l := newLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level})).With("kafka_client", "x"))
		if got := l.Level(); got != tt.kgoLevel {
			t.Errorf("at %s: franz-go level %v, want %v", tt.level, got, tt.kgoLevel)
		}
		l.Log(kgo.LogLevelDebug, "debug-line")
		l.Log(kgo.LogLevelInfo, "info-line")
		l.Log(kgo.LogLevelWarn, "warn-line")
		l.Log(kgo.LogLevelError, "error-line")
		for _, w := range tt.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("at %s: %q missing from %q", tt.level, w, buf.String())
			}
		}
		for _, d := range tt.drop {
			if strings.Contains(buf.String(), d) {
				t.Errorf("at %s: %q logged: %q", tt.level, d, buf.String())
			}
		}
	}
}

// captured is a slog.Handler that keeps every record at or above min, with
// the attributes of its logger, for tests to read. Safe for concurrent use.
type captured struct {
	min   slog.Level
	attrs []slog.Attr
	mu    *sync.Mutex
	recs  *[]record
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newCaptured(min slog.Level) *captured {
	return &captured{min: min, mu: &sync.Mutex{}, recs: &[]record{}}
}

func (c *captured) Enabled(_ context.Context, l slog.Level) bool { return l >= c.min }

func (c *captured) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range c.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.attrs[a.Key] = a.Value.String(); return true })
	c.mu.Lock()
	*c.recs = append(*c.recs, rec)
	c.mu.Unlock()
	return nil
}

func (c *captured) WithAttrs(as []slog.Attr) slog.Handler {
	d := *c
	d.attrs = append(slices.Clone(c.attrs), as...)
	return &d
}

func (c *captured) WithGroup(string) slog.Handler { panic("captured: groups are not used") }

// records returns a copy of what was logged so far.
func (c *captured) records() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(*c.recs)
}

// count returns how many records satisfy keep.
func (c *captured) count(keep func(record) bool) int {
	n := 0
	for _, r := range c.records() {
		if keep(r) {
			n++
		}
	}
	return n
}

func isDialFailure(r record) bool { return strings.HasPrefix(r.msg, dialFailedPrefix) }
func isRecovery(r record) bool    { return r.msg == "kafka broker reachable again" }
func isWarn(r record) bool        { return r.level >= slog.LevelWarn }

// dialFailedEOF is franz-go's other dial warning, with a TLS hint.
const dialFailedEOF = "unable to open connection to broker due to an immediate EOF, which often means the client is using TLS when the broker is not expecting it (is TLS misconfigured?)"

// step is what franz-go does to a client's dialLog: a log line, or a call
// of the connect hook (when hook is set).
type step struct {
	advance time.Duration // the clock moves this much first
	level   kgo.LogLevel
	msg     string
	addr    string // "": the line has no addr
	hook    bool
	err     error // of the connection attempt, with hook
}

func (s step) apply(l *dialLog) {
	if s.hook {
		host, port, _ := net.SplitHostPort(s.addr)
		p, _ := strconv.Atoi(port)
		l.OnBrokerConnect(kgo.BrokerMetadata{NodeID: -2147483648, Host: host, Port: int32(p)}, time.Millisecond, nil, s.err)
		return
	}
	kv := []any{"broker", "seed_0", "err", "dial tcp: connection refused"}
	if s.addr != "" {
		kv = append([]any{"addr", s.addr}, kv...)
	}
	l.Log(s.level, s.msg, kv...)
}

func dialFail(addr string) step {
	return step{advance: time.Second, level: kgo.LogLevelWarn, msg: dialFailedPrefix, addr: addr}
}
func connected(addr string) step { return step{advance: time.Second, addr: addr, hook: true} }

// A broker that cannot be dialed is warned about once per outage, per
// address; repeats are debug lines with the count, and the first connection
// after failures is one info line with the count and the outage's length.
// Other lines keep newLogger's levels.
func TestDialLogOncePerOutage(t *testing.T) {
	const a, b = "10.0.0.1:9092", "10.0.0.2:9092"
	for _, tt := range []struct {
		name  string
		steps []step
		want  []string // "LEVEL msg addr=… failed_attempts=… down_for=…", those present
	}{
		{"an outage and its end", []step{dialFail(a), dialFail(a), dialFail(a), connected(a), connected(a)}, []string{
			"WARN " + dialFailedPrefix + " addr=" + a,
			"DEBUG " + dialFailedPrefix + " addr=" + a + " failed_attempts=2",
			"DEBUG " + dialFailedPrefix + " addr=" + a + " failed_attempts=3",
			"INFO kafka broker reachable again addr=" + a + " failed_attempts=3 down_for=3s",
		}},
		{"each address has its own outage, and a new one warns again", []step{dialFail(a), dialFail(b), dialFail(a), connected(b), dialFail(b), dialFail(a)}, []string{
			"WARN " + dialFailedPrefix + " addr=" + a,
			"WARN " + dialFailedPrefix + " addr=" + b,
			"DEBUG " + dialFailedPrefix + " addr=" + a + " failed_attempts=2",
			"INFO kafka broker reachable again addr=" + b + " failed_attempts=1 down_for=2s",
			"WARN " + dialFailedPrefix + " addr=" + b,
			"DEBUG " + dialFailedPrefix + " addr=" + a + " failed_attempts=3",
		}},
		{"a connection that fails to initialize ends nothing", []step{dialFail(a), {advance: time.Second, addr: a, hook: true, err: errors.New("EOF")}, dialFail(a), connected(a)}, []string{
			"WARN " + dialFailedPrefix + " addr=" + a,
			"DEBUG " + dialFailedPrefix + " addr=" + a + " failed_attempts=2",
			"INFO kafka broker reachable again addr=" + a + " failed_attempts=2 down_for=3s",
		}},
		{"a connection without an outage logs nothing", []step{connected(a)}, nil},
		{"the TLS hint variant is the same outage", []step{{advance: time.Second, level: kgo.LogLevelWarn, msg: dialFailedEOF, addr: a}, dialFail(a)}, []string{
			"WARN " + dialFailedEOF + " addr=" + a,
			"DEBUG " + dialFailedPrefix + " addr=" + a + " failed_attempts=2",
		}},
		{"a failure without an address passes through", []step{dialFail(""), dialFail("")}, []string{
			"WARN " + dialFailedPrefix,
			"WARN " + dialFailedPrefix,
		}},
		{"other lines keep their levels", []step{
			{level: kgo.LogLevelWarn, msg: "read from broker errored", addr: a},
			{level: kgo.LogLevelWarn, msg: "read from broker errored", addr: a},
			{level: kgo.LogLevelInfo, msg: "assigning partitions"},
			{level: kgo.LogLevelDebug, msg: "connection opened to broker", addr: a},
		}, []string{
			"WARN read from broker errored addr=" + a,
			"WARN read from broker errored addr=" + a,
			"DEBUG assigning partitions",
			"DEBUG-4 connection opened to broker addr=" + a,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newCaptured(slog.LevelDebug - 4)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			l := newDialLog(slog.New(h).With("kafka_client", "x"), func() time.Time { return now })
			for _, s := range tt.steps {
				now = now.Add(s.advance)
				s.apply(l)
			}
			var got []string
			for _, r := range h.records() {
				s := r.level.String() + " " + r.msg
				for _, k := range []string{"addr", "failed_attempts", "down_for"} {
					if v, ok := r.attrs[k]; ok {
						s += " " + k + "=" + v
					}
				}
				got = append(got, s)
				if r.attrs["kafka_client"] != "x" || (!isRecovery(r) && r.attrs["broker"] != "seed_0") {
					t.Errorf("%q: attrs %v, want kafka_client and franz-go's broker kept", s, r.attrs)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Concurrent failures of one address warn once and count every attempt.
func TestDialLogConcurrent(t *testing.T) {
	h := newCaptured(slog.LevelDebug)
	l := newDialLog(slog.New(h), time.Now)
	const n = 64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { dialFail("10.0.0.1:9092").apply(l) })
	}
	wg.Wait()
	connected("10.0.0.1:9092").apply(l)
	if w := h.count(isWarn); w != 1 {
		t.Errorf("%d warnings, want 1", w)
	}
	rec := h.records()
	if last := rec[len(rec)-1]; !isRecovery(last) || last.attrs["failed_attempts"] != strconv.Itoa(n) {
		t.Errorf("last line %+v, want the recovery with failed_attempts=%d", last, n)
	}
}

// freePort returns a port on 127.0.0.1 that nothing listens on (a listener's,
// closed), for a broker that is dead until a test starts kfake on it.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// waitFor polls cond until it holds or the deadline passes (then fails,
// saying what).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A real client polling a dead broker warns once, however many times it
// dials; when the broker comes up, one info line says so, with the count of
// failed dials. The wait is bounded by dials observed, not by time.
func TestDeadBrokerWarnsOnce(t *testing.T) {
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	h := newCaptured(slog.LevelDebug) // --log-level debug: the repeats are visible to count
	conn, err := New(Config{Brokers: []string{addr}}, slog.New(h), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := conn.NewClient("consumer", kgo.ConsumeTopics("t"), // redials every 250ms, not backing off to 5s:
		kgo.MetadataMinAge(250*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 250 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	defer func() { cancel(); <-polled; cl.Close() }()

	const dials = 16 // about 4s of polling
	waitFor(t, 60*time.Second, fmt.Sprintf("%d failed dials to %s", dials, addr), func() bool { return h.count(isDialFailure) >= dials })
	if w := h.count(isWarn); w > 2 {
		t.Fatalf("%d warnings after %d failed dials, want at most 2: %+v", w, h.count(isDialFailure), h.records())
	}
	if w := h.count(func(r record) bool { return isWarn(r) && isDialFailure(r) }); w != 1 {
		t.Fatalf("%d dial warnings, want 1 (has franz-go's line changed?): %+v", w, h.records())
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatalf("starting kfake on %s: %v", addr, err)
	}
	defer cluster.Close()
	waitFor(t, 30*time.Second, "the recovery line", func() bool { return h.count(isRecovery) > 0 })
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if err := cl.Ping(pctx); err != nil { // the client works: nothing more to recover from
		t.Fatal(err)
	}
	var failures, recoveries []record
	for _, r := range h.records() {
		switch {
		case isDialFailure(r) && len(recoveries) == 0:
			failures = append(failures, r)
		case isRecovery(r):
			recoveries = append(recoveries, r)
		}
	}
	if len(recoveries) != 1 {
		t.Fatalf("%d recovery lines, want 1: %+v", len(recoveries), recoveries)
	}
	rec := recoveries[0]
	if rec.level != slog.LevelInfo || rec.attrs["failed_attempts"] != strconv.Itoa(len(failures)) ||
		rec.attrs["addr"] != addr || rec.attrs["kafka_client"] != "consumer" || rec.attrs["down_for"] == "" {
		t.Errorf("recovery %+v, want info with addr=%s kafka_client=consumer failed_attempts=%d and down_for", rec, addr, len(failures))
	}
	if w := h.count(isWarn); w > 2 {
		t.Errorf("%d warnings in all, want at most 2: %+v", w, h.records())
	}
}
