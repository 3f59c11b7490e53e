package cli

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/term"

	"github.com/streamjoin/streamjoin/internal/produce"
)

func newProduceCmd() *cobra.Command {
	var (
		brokers  []string
		topic    string
		path     string
		keyField string
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send a JSON array or NDJSON file to a topic, one record per object",
		Example: `  streamjoin produce --brokers 127.0.0.1:9092 --topic user_events \
    --file events.json --key received_at`,
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&brokers, "brokers", []string{"127.0.0.1:9092"}, "Kafka seed brokers, host:port, comma-separated")
	fs.StringVar(&topic, "topic", "", "topic to produce to (required)")
	fs.StringVar(&path, "file", "", "JSON array or NDJSON file; - reads standard input (required)")
	fs.StringVar(&keyField, "key", "", "top-level field whose value becomes the record key (default: no key)")
	validate := func() error {
		if topic == "" {
			return fmt.Errorf("topic: required")
		}
		if path == "" {
			return fmt.Errorf("file: required")
		}
		return nil
	}
	withConfig(cmd, validate, func(cmd *cobra.Command, _ *slog.Logger) error {
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
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordDeliveryTimeout(30*time.Second))
		if err != nil {
			return fmt.Errorf("brokers: %w", err)
		}
		defer cl.Close()
		var progress func()
		if term.IsTerminal(int(os.Stderr.Fd())) {
			bar := progressbar.NewOptions(len(values), progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription("producing to "+topic), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
			progress = func() { _ = bar.Add(1) }
			defer bar.Finish()
		}
		n, err := produce.Records(cmd.Context(), cl, topic, values, keyField, progress)
		if err != nil {
			return fmt.Errorf("%d of %d records produced: %w", n, len(values), err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "produced %d records to %s\n", n, topic)
		return nil
	})
	return cmd
}
