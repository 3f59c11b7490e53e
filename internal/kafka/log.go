package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
)

// newLogger routes a client's logs to logger through franz-go's kslog
// plugin, with franz-go's info and debug lines one step down: its info
// (joins, assignments, metadata, one line per produce to a new topic) is
// streamjoin's debug, and its per-request debug is below that. Its warnings
// and errors keep their level. So the default info level shows what goes
// wrong, and --log-level debug shows the group's life.
func newLogger(logger *slog.Logger) kgo.Logger {
	return kslog.New(slog.New(demoted{logger.Handler()}))
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
