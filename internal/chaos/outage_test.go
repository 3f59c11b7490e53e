package chaos_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

// outage is how long each outage test keeps its dependency down.
const outage = 15 * time.Second

// TestPostgresOutage stops the database for 15 seconds mid-stream. The
// process stays up, /ready and the API answer 503 problem+json at once
// instead of hanging, writes are retried with backoff, and once the database
// is back the pipeline catches up to the exact end state.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	startPG := privatePostgres(t)
	pg := startPG()
	h := setup(t, pg.DSN, "")
	started := time.Now()
	n := min(*flagEvents, 60_000)
	// With invalid records: an outage that catches a batch at its
	// ownership check before the dead-letter produce counts there too
	// (write_errors_total by class), so the check below holds wherever the
	// outage lands.
	s := h.produce(streamConfig(n, 11), n/30, nil)
	p := h.start("--query-timeout", "1s")
	if !h.waitProgress(0, 60*time.Second) {
		t.Fatal("no progress in 60s")
	}
	if status, _, _, _ := get(p.base+"/ready", 5*time.Second); status != 200 {
		t.Fatalf("/ready before the outage = %d, want 200", status)
	}

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	ready := 0
	for deadline := time.Now().Add(5 * time.Second); ready != 503 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ready, _, _, _ = get(p.base+"/ready", 5*time.Second)
	}
	if ready != 503 {
		t.Errorf("/ready during the outage = %d, want 503", ready)
	}
	reqStart := time.Now()
	status, ctype, body, err := get(p.base+"/users/user1", 10*time.Second)
	if took := time.Since(reqStart); err != nil || status != 503 || ctype != "application/problem+json" || took > 3*time.Second {
		t.Errorf("GET /users during the outage: %d %q %s after %s (err %v); want a prompt 503 problem+json", status, ctype, body, took, err)
	}
	// Writes fail as unavailable and are retried, within the outage.
	p.waitMetrics(t, time.Until(down.Add(outage)), func(m testenv.Metrics) error {
		return atLeast(m, "streamjoin_ingest_write_errors_total", map[string]string{"class": "unavailable"}, 2)
	})
	p.stayAlive(t, time.Until(down.Add(outage)), "the database outage")
	// With backoff capped at --retry-backoff-max 1s, a few writers retry a
	// few dozen times in 15s; without backoff they would fail thousands of
	// times.
	failed, err := p.metrics(t).Value("streamjoin_ingest_write_errors_total", map[string]string{"class": "unavailable"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v writes failed as unavailable during the %s outage", failed, outage)
	if failed > 300 {
		t.Errorf("%v failed writes in %s: retried without backoff", failed, outage)
	}
	startPG()
	h.reconnect()
	t.Logf("database back after %s", time.Since(down).Round(time.Millisecond))

	h.waitCaughtUp(s, 5*time.Minute)
	if status, _, _, _ := get(p.base+"/ready", 5*time.Second); status != 200 {
		t.Errorf("/ready after the outage = %d, want 200", status)
	}
	f := figures{Test: "postgres-outage"}
	h.finish(s, &f, started, p)
}

// TestKafkaOutage starts the process before the broker exists, then takes the
// broker away mid-stream and brings it back with its data. The process keeps
// trying to connect (its connection error counter rises), never exits, and
// ends in the exact end state.
func TestKafkaOutage(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dataDir := t.TempDir()
	h := setup(t, "", addr)
	started := time.Now()
	broker := func() *kfake.Cluster {
		t.Helper()
		c, err := kfake.NewCluster(append(h.kafkaOpts(), kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dataDir))...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	p := h.start()
	// It keeps trying to connect, and stays up meanwhile.
	p.waitMetrics(t, 30*time.Second, func(m testenv.Metrics) error {
		return atLeast(m, "streamjoin_kafka_connect_errors_total", nil, 3)
	})
	if status, _, _, _ := get(p.base+"/ready", 5*time.Second); status != 503 {
		t.Errorf("/ready without a broker = %d, want 503", status)
	}
	kc := broker()

	// The producer stops while the broker is down.
	var down atomic.Bool
	var pausedMu sync.Mutex
	paused := sync.NewCond(&pausedMu)
	isPaused := false
	pause := func() {
		pausedMu.Lock()
		defer pausedMu.Unlock()
		for down.Load() {
			isPaused = true
			paused.Broadcast()
			paused.Wait()
		}
		isPaused = false
	}
	n := min(*flagEvents, 60_000)
	s := h.produce(streamConfig(n, 13), n/20, pause)
	if !h.waitProgress(0, 60*time.Second) {
		t.Fatal("no progress in 60s")
	}

	down.Store(true)
	pausedMu.Lock()
	for !isPaused {
		paused.Wait()
	}
	pausedMu.Unlock()
	// Connection errors until now (none, most likely, since it connected).
	before, err := p.metrics(t).Sum("streamjoin_kafka_connect_errors_total", nil)
	if err != nil && !errors.Is(err, testenv.ErrNoSeries) {
		t.Fatal(err)
	}
	kc.Close()
	wentDown := time.Now()
	// It notices the broker is gone and keeps trying, and stays up.
	p.waitMetrics(t, outage, func(m testenv.Metrics) error {
		return atLeast(m, "streamjoin_kafka_connect_errors_total", nil, before+2)
	})
	p.stayAlive(t, time.Until(wentDown.Add(outage)), "the broker outage")
	kc = broker()
	defer kc.Close()
	pausedMu.Lock()
	down.Store(false)
	paused.Broadcast()
	pausedMu.Unlock()

	h.waitCaughtUp(s, 5*time.Minute)
	f := figures{Test: "kafka-outage"}
	h.finish(s, &f, started, p)
}

// atLeast requires the sum of the series of metric name matching labels to
// be at least min; an absent series is an error, not 0.
func atLeast(m testenv.Metrics, name string, labels map[string]string, min float64) error {
	v, err := m.Sum(name, labels)
	if err != nil {
		return err
	}
	if v < min {
		return fmt.Errorf("%s%v = %v, want at least %v", name, labels, v, min)
	}
	return nil
}
