package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/term"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/produce"
)

func newProduceCmd() *cobra.Command {
	var (
		kc       kafka.Config
		topic    string
		path     string
		keyField string
		timeout  timeoutFlags
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send a JSON array or NDJSON file to a topic, one record per object",
		Long: `produce sends each value of a JSON array or NDJSON file (- for standard
input) to --topic as one record, keyed by the field --key names. A value
without that field (or with it null) is not produced: it is counted and
reported, and the command exits 1 after producing the others. Progress goes
to standard error: a bar on a terminal, else a line every few seconds.
Against brokers that cannot be reached it fails after --timeout, naming them.`,
		Example: `  streamjoin produce --brokers 127.0.0.1:9092 --topic user_events \
    --file events.json --key received_at`,
	}
	fs := cmd.Flags()
	kafkaFlags(fs, &kc, []string{"127.0.0.1:9092"})
	fs.StringVar(&topic, "topic", "", "topic to produce to")
	fs.StringVar(&path, "file", "", "JSON array or NDJSON file; - reads standard input")
	fs.StringVar(&keyField, "key", "", "top-level field whose value becomes the record key; a record without it is an error (default: no key)")
	markRequired(fs, "topic", "")
	markRequired(fs, "file", "")
	timeout.register(fs)
	validate := func() error {
		if topic == "" {
			return fmt.Errorf("topic: required")
		}
		if path == "" {
			return fmt.Errorf("file: required")
		}
		if err := timeout.validate(fs); err != nil {
			return err
		}
		return kc.Validate()
	}
	withConfig(cmd, validate, func(cmd *cobra.Command, logger *slog.Logger) error {
		in := os.Stdin
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("file: %w", err)
			}
			defer f.Close()
			in = f
		}
		values, err := produce.Decode(in)
		if err != nil {
			return fmt.Errorf("file %s: %w", path, err)
		}
		missing := produce.MissingKey(values, keyField)
		values = without(values, missing)
		conn, err := kafka.New(kc, logger.With("component", "kafka"), nil)
		if err != nil {
			return err
		}
		cl, err := conn.NewClient("producer", kgo.RecordDeliveryTimeout(timeout.get(fs)))
		if err != nil {
			return err
		}
		defer cl.Close()
		progress, finish := newProgress(cmd.ErrOrStderr(), topic, len(values), progressEvery)
		p := newFailFast(cmd.Context(), cl)
		defer p.Close()
		n, err := produce.Records(cmd.Context(), p, topic, values, keyField, progress)
		finish()
		if err != nil {
			return fmt.Errorf("%d of %s produced to %s at %s: %w", n, records(len(values)), topic, strings.Join(kc.Brokers, ","), err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "produced %s to %s\n", records(n), topic)
		if len(missing) > 0 {
			return fmt.Errorf("%s of %d had no field %q (absent or null), so no key, and %s not produced: %s",
				records(len(missing)), len(missing)+len(values), keyField, wasWere(len(missing)), recordNumbers(missing, 10))
		}
		return nil
	})
	return cmd
}

// records is "1 record", "2 records".
func records(n int) string {
	if n == 1 {
		return "1 record"
	}
	return strconv.Itoa(n) + " records"
}

func wasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// without returns values less the ones at the (ascending) indexes drop.
func without(values []json.RawMessage, drop []int) []json.RawMessage {
	if len(drop) == 0 {
		return values
	}
	out := make([]json.RawMessage, 0, len(values)-len(drop))
	for i, v := range values {
		if len(drop) > 0 && drop[0] == i {
			drop = drop[1:]
			continue
		}
		out = append(out, v)
	}
	return out
}

// recordNumbers names the records at idx, counted from 1 as an editor
// counts NDJSON lines, at most max of them.
func recordNumbers(idx []int, max int) string {
	var b strings.Builder
	b.WriteString("record")
	if len(idx) > 1 {
		b.WriteString("s")
	}
	for i, n := range idx {
		if i == max {
			fmt.Fprintf(&b, " and %d more", len(idx)-max)
			break
		}
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " #%d", n+1)
	}
	return b.String()
}

// progressEvery is how often produce writes a progress line when its
// standard error is not a terminal.
const progressEvery = 2 * time.Second

// newProgress returns the callback produce.Records calls after each
// acknowledgement, and a finish function to call once it returns. On a
// terminal w gets a progress bar; elsewhere (a pipe, a file, CI) a line at
// most every interval and one at the end.
func newProgress(w io.Writer, topic string, total int, every time.Duration) (progress func(), finish func()) {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("producing to "+topic), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
		return func() { _ = bar.Add(1) }, func() { _ = bar.Finish() }
	}
	l := &progressLines{w: w, topic: topic, total: total, every: every, start: time.Now()}
	l.last = l.start
	return l.add, l.finish
}

// progressLines writes produce's progress as lines. Its methods are safe
// for concurrent use.
type progressLines struct {
	w     io.Writer
	topic string
	total int
	every time.Duration

	mu          sync.Mutex
	n           int
	start, last time.Time
}

func (l *progressLines) add() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if now := time.Now(); now.Sub(l.last) >= l.every && l.n < l.total {
		l.last = now
		l.line(now)
	}
}

func (l *progressLines) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.line(time.Now())
}

func (l *progressLines) line(now time.Time) {
	pct := 100
	if l.total > 0 {
		pct = l.n * 100 / l.total
	}
	elapsed := now.Sub(l.start)
	fmt.Fprintf(l.w, "producing to %s: %d of %s acknowledged (%d%%) in %s, %.0f/s\n",
		l.topic, l.n, records(l.total), pct, elapsed.Round(time.Millisecond), float64(l.n)/max(elapsed.Seconds(), 1e-3))
}

// defaultTimeout bounds how long produce and gen wait for brokers that do
// not answer.
const defaultTimeout = 30 * time.Second

// timeoutFlags are --timeout and its deprecated alias --delivery-timeout:
// how long a record may wait for its acknowledgement, connecting and
// fetching metadata included, before the command fails. It is what makes a
// dead broker an error rather than a hang.
type timeoutFlags struct {
	timeout, alias durationValue
}

func (t *timeoutFlags) register(fs *pflag.FlagSet) {
	t.timeout.d, t.alias.d = defaultTimeout, defaultTimeout
	fs.Var(&t.timeout, "timeout", "how long a record may wait to be acknowledged, connecting to the brokers included, before the command fails (at least 1s)")
	fs.Var(&t.alias, "delivery-timeout", "the former name of --timeout")
	_ = fs.MarkDeprecated("delivery-timeout", "use --timeout")
}

// chosen returns the flag that holds the timeout and its value: the alias
// only when it was set at a higher level (command line over environment
// and file) than --timeout.
func (t *timeoutFlags) chosen(fs *pflag.FlagSet) (string, time.Duration) {
	level := func(name string, v *durationValue) int {
		switch {
		case fs.Lookup(name).Changed:
			return 2
		case v.set:
			return 1
		}
		return 0
	}
	if level("delivery-timeout", &t.alias) > level("timeout", &t.timeout) {
		return "delivery-timeout", t.alias.d
	}
	return "timeout", t.timeout.d
}

func (t *timeoutFlags) get(fs *pflag.FlagSet) time.Duration {
	_, d := t.chosen(fs)
	return d
}

// validate enforces franz-go's minimum: kgo.NewClient rejects a record
// timeout under 1s, and 0 would mean wait forever.
func (t *timeoutFlags) validate(fs *pflag.FlagSet) error {
	if name, d := t.chosen(fs); d < time.Second {
		return fmt.Errorf("%s %s: must be at least 1s", name, d)
	}
	return nil
}

// durationValue is a duration flag that knows whether anything set it.
type durationValue struct {
	d   time.Duration
	set bool
}

func (v *durationValue) String() string { return v.d.String() }
func (v *durationValue) Type() string   { return "duration" }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	v.d, v.set = d, true
	return nil
}
