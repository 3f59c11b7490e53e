package ingest_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/store"
)

// gatedWriter holds every WriteLog until open is closed: nothing commits
// before the test lets it.
type gatedWriter struct {
	ingest.Writer
	open chan struct{}
}

func (w *gatedWriter) WriteLog(ctx context.Context, b *store.Batch) error {
	select {
	case <-w.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return w.Writer.WriteLog(ctx, b)
}

// lagSeries reads every streamjoin_ingest_consumer_lag_records series of
// reg, keyed "topic/partition".
func lagSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	mf := gathered(t, reg)["streamjoin_ingest_consumer_lag_records"]
	for _, s := range mf.GetMetric() {
		l := map[string]string{}
		for _, p := range s.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		out[l["topic"]+"/"+l["partition"]] = s.GetGauge().GetValue()
	}
	return out
}

// waitLag waits until every partition of want has a lag series equal to
// its value; a series that never appears fails, it is never read as 0.
func waitLag(t *testing.T, reg *prometheus.Registry, what string, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := lagSeries(t, reg)
		ok := true
		for k, v := range want {
			if g, present := got[k]; !present || g != v {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: lag series %v, want %v", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsumerLagAndFreshness: records produced before the consumer starts
// and held from committing show as each partition's whole length behind;
// once the commits go through, every partition reads 0. The freshness
// histogram holds one observation per valid record committed. When
// another member takes partitions over, their series leave this member's
// registry, and a member that stopped has none.
func TestConsumerLagAndFreshness(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(2, "user_events", "org_events"))
	users, orgs := workload(11, 50, 600, 5, 60)
	produce(t, e.broker, "user_events", users)
	produce(t, e.broker, "org_events", orgs)
	ends, zero := map[string]float64{}, map[string]float64{}
	valid := 0
	for topic, recs := range map[string][]*rec{"user_events": users, "org_events": orgs} {
		for _, r := range recs {
			k := topic + "/" + strconv.Itoa(int(r.partition))
			ends[k] = max(ends[k], float64(r.offset+1))
			zero[k] = 0
			if !r.invalid {
				valid++
			}
		}
	}
	if len(ends) != 4 {
		t.Fatalf("records landed on %d partitions, want all 4: %v", len(ends), ends)
	}

	// Polls large enough to take every partition's records before the
	// held lanes stop the polling.
	cfg := e.config(10000)
	cfg.RebalanceTimeout = 5 * time.Second
	w := &gatedWriter{Writer: e.st, open: make(chan struct{})}
	var opened sync.Once
	open := func() { opened.Do(func() { close(w.open) }) }
	reg := prometheus.NewRegistry()
	stop := e.runMember(t, cfg, w, reg)
	t.Cleanup(open) // before stop: a failed test must not wait out the shutdown timeout
	waitLag(t, reg, "nothing committed", ends)
	open()
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	waitLag(t, reg, "caught up", zero)

	m := gathered(t, reg)
	committed, err := m.Sum("streamjoin_ingest_records_total", map[string]string{"outcome": "valid"})
	if err != nil || committed != float64(valid) {
		t.Fatalf("valid records committed = %v (%v), want %d", committed, err, valid)
	}
	h := m["streamjoin_ingest_freshness_seconds"].GetMetric()
	if len(h) != 1 || h[0].GetHistogram().GetSampleCount() != uint64(valid) || h[0].GetHistogram().GetSampleSum() <= 0 {
		t.Fatalf("freshness histogram %v, want %d observations with a positive sum", h, valid)
	}

	// A second member joins: the partitions it takes leave this one's series.
	e.runMember(t, cfg, e.st, prometheus.NewRegistry())
	deadline := time.Now().Add(30 * time.Second)
	for len(lagSeries(t, reg)) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after a second member joined, the first still has lag series %v, want at most its 2 partitions", lagSeries(t, reg))
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if got := lagSeries(t, reg); len(got) != 0 {
		t.Fatalf("a stopped member has lag series %v, want none", got)
	}
}
