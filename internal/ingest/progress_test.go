package ingest_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/ingest"
)

// progressLines collects the consumer's "progress" log records.
type progressLines struct {
	mu      sync.Mutex
	records []int64 // the "records" attribute of each line
	noLag   int     // lines without a "lag" (records behind) attribute
}

func (p *progressLines) Enabled(context.Context, slog.Level) bool { return true }
func (p *progressLines) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *progressLines) WithGroup(string) slog.Handler            { return p }
func (p *progressLines) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "progress" {
		return nil
	}
	lag := false
	r.Attrs(func(a slog.Attr) bool {
		lag = lag || a.Key == "lag" && a.Value.Kind() == slog.KindInt64 && a.Value.Int64() >= 0
		if a.Key == "records" {
			p.mu.Lock()
			p.records = append(p.records, a.Value.Int64())
			p.mu.Unlock()
		}
		return true
	})
	if !lag {
		p.mu.Lock()
		p.noLag++
		p.mu.Unlock()
	}
	return nil
}

func (p *progressLines) sum() (lines int, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.records {
		total += n
	}
	return len(p.records), total
}

// TestProgressLines: while records are committed the consumer logs a
// progress line per interval, and the lines add up to exactly the valid
// records committed: none counted twice, none left out.
func TestProgressLines(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(6, "user_events", "org_events"))
	users, orgs := workload(9, 100, 3000, 10, 200)
	produce(t, e.broker, "user_events", users)
	produce(t, e.broker, "org_events", orgs)
	valid := int64(0)
	for _, r := range append(append([]*rec{}, users...), orgs...) {
		if !r.invalid {
			valid++
		}
	}
	cfg := e.config(100)
	cfg.ProgressInterval = 100 * time.Millisecond
	lines := &progressLines{}
	c, err := ingest.New(cfg, e.connector(t), e.st, nil, slog.New(lines))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n, total := lines.sum()
	if n == 0 || total != valid {
		t.Fatalf("%d progress lines reporting %d records, want lines adding up to the %d valid records", n, total, valid)
	}
	if lines.noLag > 0 {
		t.Errorf("%d of %d progress lines carry no lag (records behind)", lines.noLag, n)
	}
}
