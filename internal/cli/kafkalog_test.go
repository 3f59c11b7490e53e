package cli

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestCommandKafkaLogger(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		level      slog.Level
		want, drop []string
	}{
		{level: slog.LevelInfo, want: []string{"warn-line", "component=kafka"}, drop: []string{"info-line", "debug-line"}},
		{level: slog.LevelDebug, want: []string{"warn-line", "info-line", "debug-line"}},
		{level: slog.LevelError, drop: []string{"warn-line"}},
	} {
		var buf bytes.Buffer
		l := commandKafkaLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))).With("kafka_client", "x")
		l.Debug("debug-line")
		l.Info("info-line")
		l.Warn("warn-line")
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
