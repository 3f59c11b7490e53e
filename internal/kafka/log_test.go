package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

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
