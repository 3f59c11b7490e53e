package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/kafka"
)

func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect dead-letter topics and replay their records",
	}
	cmd.AddCommand(newDLQListCmd(), newDLQReplayCmd())
	return cmd
}

// dlqFlags are the flags list and replay share.
type dlqFlags struct {
	kafka  kafka.Config
	topic  string
	filter dlq.Filter
}

func (f *dlqFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	kafkaFlags(fs, &f.kafka, []string{"127.0.0.1:9092"})
	fs.StringVar(&f.topic, "topic", "", "dead-letter topic, e.g. user_events.dlq (required)")
	fs.StringVar(&f.filter.Code, "filter-code", "", "only dead letters with this reason code: malformed_json, not_object, missing_field, wrong_type, unknown_event_type, bad_timestamp, null_value, too_large, not_utf8 or nul_character")
	fs.StringVar(&f.filter.Reason, "filter-reason", "", "only dead letters whose reason contains this text")
}

func (f *dlqFlags) validate() error {
	if f.topic == "" {
		return fmt.Errorf("topic: required")
	}
	if f.filter.Code != "" && !slices.Contains(knownCodes, event.Code(f.filter.Code)) {
		names := make([]string, len(knownCodes))
		for i, c := range knownCodes {
			names[i] = string(c)
		}
		return fmt.Errorf("filter-code %q: not a code streamjoin writes; the codes are %s", f.filter.Code, strings.Join(names, ", "))
	}
	return f.kafka.Validate()
}

// knownCodes are the reason codes dead letters carry (event.Code), in the
// order --help and errors list them. TestKnownCodesAreEventCodes holds it
// to the constants of internal/event.
var knownCodes = []event.Code{
	event.CodeMalformedJSON, event.CodeNotObject, event.CodeMissingField, event.CodeWrongType,
	event.CodeUnknownType, event.CodeBadTimestamp, event.CodeNullValue, event.CodeTooLarge,
	event.CodeNotUTF8, event.CodeNULCharacter,
}

// connector builds the command's Kafka clients.
func (f *dlqFlags) connector(logger *slog.Logger) (*kafka.Connector, error) {
	cfg := f.kafka
	if cfg.ClientID == "" {
		cfg.ClientID = "streamjoin-dlq"
	}
	return kafka.New(cfg, logger.With("component", "kafka"), nil)
}

func newDLQListCmd() *cobra.Command {
	var (
		f      dlqFlags
		limit  int
		format string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show the committed records of a dead-letter topic (read_committed) with their reasons",
		Example: `  streamjoin dlq list --brokers 127.0.0.1:9092 --topic user_events.dlq
  streamjoin dlq list --topic user_events.dlq --filter-code bad_timestamp --format json`,
	}
	f.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")
	cmd.Flags().StringVar(&format, "format", "table", "output: table or json (one object per line)")
	validate := func() error {
		if format != "table" && format != "json" {
			return fmt.Errorf("format %q: want table or json", format)
		}
		if limit < 0 {
			return fmt.Errorf("limit %d: must not be negative", limit)
		}
		return f.validate()
	}
	withConfig(cmd, validate, func(cmd *cobra.Command, logger *slog.Logger) error {
		conn, err := f.connector(logger)
		if err != nil {
			return err
		}
		letters, err := readOrdered(cmd.Context(), conn, f.topic, f.filter, limit)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		enc := json.NewEncoder(out)
		if format == "table" {
			fmt.Fprintln(tw, "DLQ POSITION\tSOURCE\tCODE\tREASON\tVALUE")
		}
		n := len(letters)
		for _, l := range letters {
			if format == "json" {
				if err := enc.Encode(letterJSON(l)); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%d/%d\t%s/%d/%d\t%s\t%s\t%s\n", l.Partition, l.Offset, l.SourceTopic, l.SourcePartition, l.SourceOffset, l.Code, oneLine(l.Reason, 80), oneLine(string(l.Value), 60))
		}
		if format == "table" {
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d dead letter(s)\n", n)
		}
		return nil
	})
	return cmd
}

// readOrdered reads topic's dead letters that match filter and returns
// them by partition, then offset (dlq.Read interleaves partitions as the
// broker returns them): the first limit of them (0: all). It holds at
// most limit letters per partition, all of them without a limit.
func readOrdered(ctx context.Context, conn *kafka.Connector, topic string, filter dlq.Filter, limit int) ([]*dlq.Letter, error) {
	byPartition := map[int32][]*dlq.Letter{}
	err := dlq.Read(ctx, topic, filter, func(l *dlq.Letter) error {
		if limit == 0 || len(byPartition[l.Partition]) < limit {
			byPartition[l.Partition] = append(byPartition[l.Partition], l)
		}
		return nil
	}, conn)
	if err != nil {
		return nil, err
	}
	parts := slices.Sorted(maps.Keys(byPartition))
	var out []*dlq.Letter
	for _, p := range parts {
		out = append(out, byPartition[p]...) // each partition's in offset order already
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func letterJSON(l *dlq.Letter) map[string]any {
	value := any(nil)
	if l.Value != nil {
		if utf8.Valid(l.Value) {
			value = string(l.Value)
		} else {
			value = l.Value // base64 in JSON
		}
	}
	return map[string]any{
		"partition": l.Partition, "offset": l.Offset, "timestamp": l.Timestamp,
		"source_topic": l.SourceTopic, "source_partition": l.SourcePartition, "source_offset": l.SourceOffset,
		"code": l.Code, "reason": l.Reason, "key": string(l.Key), "value": value,
	}
}

// oneLine makes s fit a table cell: no newlines or tabs, at most max runes.
func oneLine(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace(s)
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max-1]) + "…"
	}
	return s
}

func newDLQReplayCmd() *cobra.Command {
	var (
		f      dlqFlags
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Produce dead letters back to their source topics, once their cause is fixed",
		Long: `replay produces each matching dead letter to the topic it came from, with its
original key, value and headers plus streamjoin.replayed.from. It is
at-least-once: replaying twice produces the records twice, which event-time
upserts make harmless for the state (the raw logs keep both). Records that
are still invalid go to the dead-letter topic again.`,
		Example: `  streamjoin dlq replay --topic user_events.dlq --filter-code bad_timestamp --dry-run
  streamjoin dlq replay --topic user_events.dlq --filter-code bad_timestamp`,
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be replayed, produce nothing")
	withConfig(cmd, f.validate, func(cmd *cobra.Command, logger *slog.Logger) error {
		conn, err := f.connector(logger)
		if err != nil {
			return err
		}
		res, err := dlq.Replay(cmd.Context(), f.topic, f.filter, dryRun, conn)
		if err != nil {
			return err
		}
		if dryRun {
			fmt.Fprintf(cmd.OutOrStdout(), "dry run: %d dead letter(s) of %s match; nothing produced\n", res.Matched, f.topic)
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "replayed %d of %d matching dead letter(s) of %s (%d duplicate(s) skipped)\n", res.Replayed, res.Matched, f.topic, res.Duplicates)
		for topic, n := range res.Topics {
			fmt.Fprintf(cmd.OutOrStdout(), "  %d to %s\n", n, topic)
		}
		return nil
	})
	return cmd
}
