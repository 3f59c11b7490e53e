package chaos_test

import (
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
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
	time.Sleep(time.Until(down.Add(outage)))
	if !p.alive() {
		t.Fatal("the process exited during the database outage")
	}
	pg = startPG()
	h.reconnect()
	t.Logf("database back after %s", time.Since(down).Round(time.Millisecond))

	h.waitCaughtUp(s, 5*time.Minute)
	if status, _, _, _ := get(p.base+"/ready", 5*time.Second); status != 200 {
		t.Errorf("/ready after the outage = %d, want 200", status)
	}
	if p.logCount("writing batch to postgres failed; retrying") == 0 {
		t.Error("the process did not log retrying its batch")
	}
	f := figures{Test: "postgres-outage"}
	h.finish(s, &f, false, started, p)
}

// TestKafkaOutage starts the process before the broker exists, then takes the
// broker away mid-stream and brings it back with its data. The process logs
// it, retries, never exits, and ends in the exact end state.
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
	time.Sleep(3 * time.Second)
	if !p.alive() {
		t.Fatal("the process exited when the broker was unreachable at start")
	}
	if !p.logHas("preparing kafka topics failed; retrying") {
		t.Error("the process did not log that it is waiting for the broker")
	}
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
	kc.Close()
	time.Sleep(outage)
	if !p.alive() {
		t.Fatal("the process exited during the broker outage")
	}
	kc = broker()
	defer kc.Close()
	pausedMu.Lock()
	down.Store(false)
	paused.Broadcast()
	pausedMu.Unlock()

	h.waitCaughtUp(s, 5*time.Minute)
	f := figures{Test: "kafka-outage"}
	h.finish(s, &f, false, started, p)
	_ = os.RemoveAll(dataDir)
}
