package cli

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/workload"
)

func newGenCmd() *cobra.Command {
	var (
		w         workload.Config
		kc        kafka.Config
		userTopic string
		orgTopic  string
		out       string
		rate      int
		timeout   timeoutFlags
	)
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate a realistic event stream: to Kafka, or to NDJSON files",
		Long: `gen generates user and organization events with out-of-order arrival,
duplicates and invalid records, reproducibly from --seed. With --brokers it
produces them (at --rate events/s, or as fast as possible); with --out it
writes <out>/user_events.ndjson and <out>/org_events.ndjson (one value per
line; null values, which NDJSON cannot hold, are skipped).

The two streams are counted apart: --events is the number of user events,
--org-events the number of organization events (by default one per 50 user
events, at most one per organization plus one per 100 user events: 20 for
--events 1000, 20,000 for the default 1,000,000). --invalid, --duplicates
and --out-of-order are fractions of each stream, and the counts include
them: --events 1000 --invalid 0.05 is about 950 valid and 50 invalid user
events.`,
		Example: `  streamjoin gen --brokers 127.0.0.1:9092 --events 100000 --rate 20000
  streamjoin gen --out ./data --events 10000 --invalid 0.05`,
	}
	fs := cmd.Flags()
	workloadFlags(fs, &w)
	// gen's own words for the counts; bench shares the flags.
	for name, usage := range map[string]string{
		"events":     "user events to generate, invalid and duplicate records included",
		"org-events": "organization events to generate, invalid and duplicate records included (0: one per 50 user events, at most one per organization plus one per 100 user events)",
		"invalid":    "fraction of each stream's records (user and organization events alike) that are invalid",
		"duplicates": "fraction of each stream's records that repeat an earlier record of it",
	} {
		fs.Lookup(name).Usage = usage
	}
	kafkaFlags(fs, &kc, nil)
	fs.StringVar(&userTopic, "user-topic", "user_events", "topic of user events")
	fs.StringVar(&orgTopic, "org-topic", "org_events", "topic of organization events")
	fs.StringVar(&out, "out", "", "directory to write NDJSON files to, instead of producing")
	fs.IntVar(&rate, "rate", 0, "target events/s when producing (0: as fast as possible)")
	timeout.register(fs)
	validate := func() error {
		if (len(kc.Brokers) == 0) == (out == "") {
			return fmt.Errorf("brokers or out: give exactly one")
		}
		if rate < 0 {
			return fmt.Errorf("rate %d: must not be negative", rate)
		}
		if out == "" {
			if err := timeout.validate(fs); err != nil {
				return err
			}
			if err := kc.Validate(); err != nil {
				return err
			}
		}
		return w.WithDefaults().Validate()
	}
	withConfig(cmd, validate, func(cmd *cobra.Command, logger *slog.Logger) error {
		g, err := workload.New(w)
		if err != nil {
			return err
		}
		topic := map[workload.Kind]string{workload.UserEvent: userTopic, workload.OrgEvent: orgTopic}
		var n int
		if out != "" {
			n, err = genFiles(g, out, topic)
		} else {
			var conn *kafka.Connector
			if conn, err = kafka.New(kc, logger.With("component", "kafka"), nil); err != nil {
				return err
			}
			n, err = genKafka(cmd.Context(), g, conn, topic, rate, timeout.get(fs))
		}
		if err != nil {
			return err
		}
		exp := g.Expected()
		user, org := exp.Valid[workload.UserEvent]+exp.Invalid[workload.UserEvent], exp.Valid[workload.OrgEvent]+exp.Invalid[workload.OrgEvent]
		fmt.Fprintf(cmd.OutOrStdout(), "generated %s: %d user events (%d invalid) and %d organization events (%d invalid); they leave %d users and %d organizations\n",
			records(n), user, exp.Invalid[workload.UserEvent], org, exp.Invalid[workload.OrgEvent], len(exp.Users), len(exp.Orgs))
		return nil
	})
	return cmd
}

func genFiles(g *workload.Generator, dir string, topic map[workload.Kind]string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("out: %w", err)
	}
	files := map[workload.Kind]*bufio.Writer{}
	for k, t := range topic {
		f, err := os.Create(filepath.Join(dir, t+".ndjson"))
		if err != nil {
			return 0, fmt.Errorf("out: %w", err)
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		defer bw.Flush()
		files[k] = bw
	}
	n := 0
	for {
		r, ok := g.Next()
		if !ok {
			return n, nil
		}
		n++
		if r.Value == nil {
			continue
		}
		bw := files[r.Kind]
		// A value with a raw newline would break NDJSON; JSON never needs
		// one, and the generator makes none.
		bw.Write(r.Value)
		if err := bw.WriteByte('\n'); err != nil {
			return n, fmt.Errorf("out: %w", err)
		}
	}
}

// genKafka produces g's records at rate events/s (0: as fast as possible)
// and waits for every acknowledgement. It stops at the first failed record
// (a record unacknowledged after timeout fails) and returns how many
// records it generated and that error.
func genKafka(ctx context.Context, g *workload.Generator, conn *kafka.Connector, topic map[workload.Kind]string, rate int, timeout time.Duration) (int, error) {
	cl, err := conn.NewClient("gen", kgo.RecordDeliveryTimeout(timeout))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	p := newFailFast(ctx, cl)
	defer p.Close()
	n := 0
	perTick, next := 1000, time.Now()
	if rate > 0 {
		perTick = max(1, rate/100)
	}
	for more := true; more && ctx.Err() == nil && p.Err() == nil; {
		for i := 0; i < perTick; i++ {
			r, ok := g.Next()
			if !ok {
				more = false
				break
			}
			n++
			p.Produce(ctx, &kgo.Record{Topic: topic[r.Kind], Key: r.Key, Value: r.Value}, func(*kgo.Record, error) {})
		}
		if rate > 0 {
			next = next.Add(10 * time.Millisecond)
			time.Sleep(time.Until(next))
		}
	}
	if err := p.Flush(ctx); err != nil {
		return n, fmt.Errorf("producing to %v: %w", conn.Brokers(), err)
	}
	if err := p.Err(); err != nil {
		return n, fmt.Errorf("producing to %v: %w", conn.Brokers(), err)
	}
	return n, nil
}
