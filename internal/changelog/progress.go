package changelog

import (
	"log/slog"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// progressInterval is how often the leader logs what it relayed.
const progressInterval = 10 * time.Second

// progress logs one line per interval while records flow.
type progress struct {
	log     *slog.Logger
	since   time.Time
	records int
	pos     store.OutboxPosition
}

func newProgress(log *slog.Logger) *progress { return &progress{log: log, since: time.Now()} }

func (p *progress) add(n int, pos store.OutboxPosition) {
	p.records += n
	p.pos = pos
	if time.Since(p.since) >= progressInterval {
		p.flush()
	}
}

// idle is add for an empty outbox: the last records of a burst are logged
// at the end of their interval too.
func (p *progress) idle() {
	if p.records > 0 && time.Since(p.since) >= progressInterval {
		p.flush()
	}
}

func (p *progress) flush() {
	el := time.Since(p.since)
	p.log.Info("changelog relayed", "records", p.records, "per_second", int(float64(p.records)/max(el.Seconds(), 1e-3)), "commit", p.pos.Commit)
	p.records = 0
	p.since = time.Now()
}
