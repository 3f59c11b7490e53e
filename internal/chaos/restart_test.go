package chaos_test

import (
	"testing"
	"time"
)

// TestRestartWithInstanceID: a member with --instance-id, SIGKILLed and
// started again at once with the same id (as Kubernetes restarts a pod
// after an OOM kill), resumes ingest within 5 s at the default 45 s session
// timeout (and the default 60 s rebalance timeout): the group hands the static member's partitions to its
// replacement without waiting for the dead one's session to expire. The end
// state is that of one clean run. (Without an instance id the replacement
// waits out the session timeout; that is not run here, as it takes 45 s.)
func TestRestartWithInstanceID(t *testing.T) {
	t.Parallel()
	h := setup(t, "", "")
	started := time.Now()
	n := min(*flagEvents, 60_000)
	s := h.produce(streamConfig(n, 23), n/20, nil)
	f := figures{Test: "restart-instance-id"}
	// The defaults of both timeouts, which the harness shortens.
	static := []string{"--instance-id", "streamjoin-0", "--session-timeout", "45s", "--rebalance-timeout", "60s"}
	p := h.start(static...)
	if !h.waitProgress(0, 60*time.Second) {
		t.Fatal("no progress in 60s")
	}
	for k := 0; k < 3; k++ {
		time.Sleep(time.Second)
		if s.ended() {
			t.Fatalf("restart %d: the stream ended first; make it slower so that every kill lands mid-stream", k)
		}
		p.kill(t)
		f.Kills++
		killed := time.Now()
		before := h.committedTotal()
		p = h.start(static...)
		f.Restarts++
		if !h.waitProgress(before, 30*time.Second) {
			t.Fatalf("restart %d: no progress 30s after the kill", k)
		}
		if took := time.Since(killed); took > 5*time.Second {
			t.Errorf("restart %d: ingest resumed %v after the kill, want within 5s", k, took.Round(time.Millisecond))
		} else {
			t.Logf("restart %d: ingest resumed %v after the kill", k, took.Round(time.Millisecond))
		}
	}
	h.waitCaughtUp(s, 5*time.Minute)
	h.finish(s, &f, started, p)
}
