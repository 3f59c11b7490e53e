package cli

import (
	"fmt"
	"log/slog"
	"os"
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
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send a JSON array or NDJSON file to a topic, one record per object",
		Example: `  streamjoin produce --brokers 127.0.0.1:9092 --topic user_events \
    --file events.json --key received_at`,
	}
	fs := cmd.Flags()
	kafkaFlags(fs, &kc, []string{"127.0.0.1:9092"})
	fs.StringVar(&topic, "topic", "", "topic to produce to (required)")
	fs.StringVar(&path, "file", "", "JSON array or NDJSON file; - reads standard input (required)")
	fs.StringVar(&keyField, "key", "", "top-level field whose value becomes the record key (default: no key)")
	deliveryTimeoutFlag(fs, &timeout)
	validate := func() error {
		if topic == "" {
			return fmt.Errorf("topic: required")
		}
		if path == "" {
			return fmt.Errorf("file: required")
		}
		if err := validateDeliveryTimeout(timeout); err != nil {
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
		conn, err := kafka.New(kc, logger.With("component", "kafka"), nil)
		if err != nil {
			return err
		}
		cl, err := conn.NewClient("producer", kgo.RecordDeliveryTimeout(timeout))
		if err != nil {
			return err
		}
		defer cl.Close()
		var progress func()
		if term.IsTerminal(int(os.Stderr.Fd())) {
			bar := progressbar.NewOptions(len(values), progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription("producing to "+topic), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
			progress = func() { _ = bar.Add(1) }
			defer bar.Finish()
		}
		p := newFailFast(cmd.Context(), cl)
		defer p.Close()
		n, err := produce.Records(cmd.Context(), p, topic, values, keyField, progress)
		if err != nil {
			return fmt.Errorf("%d of %d records produced to %s at %v: %w", n, len(values), topic, kc.Brokers, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "produced %d records to %s\n", n, topic)
		return nil
	})
	return cmd
}

// defaultDeliveryTimeout bounds how long produce and gen wait for brokers
// that do not answer.
const defaultDeliveryTimeout = 30 * time.Second

// deliveryTimeoutFlag registers --delivery-timeout: how long a record may
// wait for its acknowledgement, connecting and fetching metadata included,
// before the command fails. It is what makes a dead broker an error rather
// than a hang.
func deliveryTimeoutFlag(fs *pflag.FlagSet, d *time.Duration) {
	fs.DurationVar(d, "delivery-timeout", defaultDeliveryTimeout, "how long a record may wait to be acknowledged, connecting included, before the command fails (at least 1s)")
}

// validateDeliveryTimeout enforces franz-go's minimum: kgo.NewClient
// rejects a record timeout under 1s, and 0 would mean wait forever.
func validateDeliveryTimeout(d time.Duration) error {
	if d < time.Second {
		return fmt.Errorf("delivery-timeout %s: must be at least 1s", d)
	}
	return nil
}
