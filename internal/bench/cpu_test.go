package bench

import (
	"context"
	"math"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

func TestClusterSeconds(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := procKey{10, 1}, procKey{11, 1}, procKey{10, 7} // k3 reuses k1's pid
	snap := func(cpu, reaps float64, children map[procKey]float64) clusterCPU {
		return clusterCPU{postmaster: procStat{cpu: cpu, reaps: reaps}, children: children}
	}
	tests := []struct {
		name string
		a, b clusterCPU
		want float64
	}{
		{"postmaster only", snap(1, 0, nil), snap(1.5, 0, nil), 0.5},
		{"child alive throughout", snap(0, 0, map[procKey]float64{k1: 2}), snap(0, 0, map[procKey]float64{k1: 3}), 1},
		{"child born during the window", snap(0, 0, nil), snap(0, 0, map[procKey]float64{k2: 0.7}), 0.7},
		{"child born and reaped during the window", snap(0, 5, nil), snap(0, 5.4, nil), 0.4},
		{"child alive at the start, reaped before the end", snap(0, 5, map[procKey]float64{k1: 2}), snap(0, 7.5, nil), 0.5},
		{"pid reused", snap(0, 0, map[procKey]float64{k1: 2}), snap(0, 2.25, map[procKey]float64{k3: 0.5}), 0.75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clusterSeconds(tt.a, tt.b); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestClusterCPUCountsExitedBackends burns CPU in a backend that then exits
// between two snapshots: the cluster's CPU must include all of it. Not
// parallel, so that other tests' load on the shared server can't make up
// for a backend left out.
func TestClusterCPUCountsExitedBackends(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	probe := testenv.Conn(t)
	pm, err := postmasterPID(ctx, probe)
	if err != nil {
		t.Fatal(err)
	}
	start, err := snapshotCluster(pm)
	if err != nil {
		t.Fatal(err)
	}
	if len(start.children) == 0 {
		t.Fatal("no children of the postmaster found")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var backend int
	var sum int64
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid(), (SELECT sum(i) FROM generate_series(1, 4000000) i)").Scan(&backend, &sum); err != nil {
		t.Fatal(err)
	}
	st, err := readProcStat(backend)
	if err != nil {
		t.Fatal(err)
	}
	burned := st.cpu
	if burned < 0.1 {
		t.Fatalf("the backend used only %.2fs of CPU: too little to tell", burned)
	}
	conn.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := readProcStat(backend); err != nil {
			break // exited and reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d not reaped within 10s", backend)
		}
	}
	end, err := snapshotCluster(pm)
	if err != nil {
		t.Fatal(err)
	}
	if got := clusterSeconds(start, end); got < burned {
		t.Errorf("cluster CPU %.2fs, less than the %.2fs the exited backend used", got, burned)
	}
}

// The child's figure comes from readProcStat: a child that is busy on the
// CPU for the whole window must show as a good part of a core (ticks are
// 10 ms; the machine may be shared).
func TestCPUMeterReadsAChildsCPU(t *testing.T) {
	// Shell arithmetic: CPU in the shell itself, not in children.
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 100000000 ]; do i=$((i+1)); done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(100 * time.Millisecond)
	m, err := startCPU(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	c, err := m.stop()
	if err != nil {
		t.Fatal(err)
	}
	if c.Streamjoin < 0.2 || c.Streamjoin > 1.2 {
		t.Fatalf("a busy child's CPU over the window = %.2f cores, want between 0.2 and 1.2", c.Streamjoin)
	}
	if c.Postgres != nil {
		t.Errorf("PostgreSQL figure %v without a postmaster, want none", *c.Postgres)
	}
}
