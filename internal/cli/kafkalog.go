package cli

import (
	"context"
	"log/slog"
)

// commandKafkaLogger is the logger for the Kafka clients of the one-shot
// commands (produce, gen, dlq): franz-go logs every connection and metadata
// step at info, which would bury the command's own output, so below warn
// they pass only when logger is at debug.
func commandKafkaLogger(logger *slog.Logger) *slog.Logger {
	l := logger.With("component", "kafka")
	if l.Enabled(context.Background(), slog.LevelDebug) {
		return l
	}
	return slog.New(minLevel{l.Handler(), slog.LevelWarn})
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
