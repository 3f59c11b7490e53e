package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PipelineCPU is how busy each process was during (c)'s drain, in cores:
// CPU seconds (user + system) over the drain's wall seconds.
type PipelineCPU struct {
	// Streamjoin is the `streamjoin run` child process.
	Streamjoin float64 `json:"streamjoin"`
	// Postgres is the PostgreSQL cluster: its postmaster and every child
	// (backends, autovacuum, WAL writer, checkpointer…), including children
	// that started or exited during the drain. Nil when the cluster's
	// processes are not visible in this machine's /proc (a remote server).
	Postgres *float64 `json:"postgres,omitempty"`
	// Bench is this process: the kfake broker serving the pipeline's
	// fetches, and the polling of the stored offsets. (The topics were
	// filled before the drain began.)
	Bench float64 `json:"bench_process"`
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procStat is what the benchmark reads from /proc/<pid>/stat.
type procStat struct {
	ppid  int
	start uint64  // starttime: with the pid, identifies the process
	cpu   float64 // utime + stime, seconds
	reaps float64 // cutime + cstime: CPU of children it has waited for, seconds
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces: fields are counted
	// from the last ')'. After it, field 3 (state) is f[0].
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	num := func(k int) uint64 { v, _ := strconv.ParseUint(f[k-3], 10, 64); return v }
	ppid, _ := strconv.Atoi(f[4-3])
	return procStat{
		ppid:  ppid,
		start: num(22),
		cpu:   float64(num(14)+num(15)) / clockTicks,
		reaps: float64(num(16)+num(17)) / clockTicks,
	}, nil
}

// procKey tells a process from a later one that reuses its pid.
type procKey struct {
	pid   int
	start uint64
}

// clusterCPU is a snapshot of a PostgreSQL cluster's processes.
type clusterCPU struct {
	postmaster procStat
	children   map[procKey]float64 // CPU seconds so far
}

// postmasterPID finds the postmaster of the server conn is connected to,
// as the parent of its backend. It fails if that server's processes are
// not in this machine's /proc.
func postmasterPID(ctx context.Context, conn *pgx.Conn) (int, error) {
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, err
	}
	st, err := readProcStat(backend)
	if err != nil {
		return 0, fmt.Errorf("PostgreSQL's processes are not visible here: %w", err)
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(st.ppid) + "/comm")
	if err != nil || !strings.HasPrefix(string(comm), "postgres") {
		return 0, fmt.Errorf("backend %d's parent %d is not a postgres process", backend, st.ppid)
	}
	return st.ppid, nil
}

// snapshotCluster reads the postmaster and every process whose parent it is.
func snapshotCluster(postmaster int) (clusterCPU, error) {
	pm, err := readProcStat(postmaster)
	if err != nil {
		return clusterCPU{}, fmt.Errorf("reading the postmaster: %w", err)
	}
	s := clusterCPU{postmaster: pm, children: map[procKey]float64{}}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return clusterCPU{}, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.ppid != postmaster {
			continue // gone since ReadDir, or not the cluster's
		}
		s.children[procKey{pid, st.start}] = st.cpu
	}
	return s, nil
}

// clusterSeconds is the cluster's CPU seconds between two snapshots. A child
// that exits is reaped by the postmaster, which adds the child's whole CPU
// time to its own cutime and cstime; so a child alive at both snapshots
// counts its difference, one that started after a and exited before b is
// all in the postmaster's reaped time, and one alive at a that exited
// before b is in it too, less what it had used by a.
func clusterSeconds(a, b clusterCPU) float64 {
	s := (b.postmaster.cpu - a.postmaster.cpu) + (b.postmaster.reaps - a.postmaster.reaps)
	for k, cpu := range b.children {
		s += cpu - a.children[k]
	}
	for k, cpu := range a.children {
		if _, alive := b.children[k]; !alive {
			s -= cpu
		}
	}
	return s
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// cpuMeter measures each process's CPU over a window; start begins it,
// stop ends it.
type cpuMeter struct {
	child      int
	postmaster int // 0: not visible
	at         time.Time
	childCPU   float64
	self       float64
	cluster    clusterCPU
}

// startCPU begins a window over the pipeline process child and, unless
// postmaster is 0, the PostgreSQL cluster under that postmaster.
func startCPU(child, postmaster int) (*cpuMeter, error) {
	m := &cpuMeter{child: child, postmaster: postmaster, at: time.Now(), self: selfCPU()}
	st, err := readProcStat(child)
	if err != nil {
		return nil, fmt.Errorf("reading the pipeline process: %w", err)
	}
	m.childCPU = st.cpu
	if postmaster != 0 {
		if m.cluster, err = snapshotCluster(postmaster); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// stop ends the window and returns the figures in cores.
func (m *cpuMeter) stop() (*PipelineCPU, error) {
	wall := time.Since(m.at).Seconds()
	self := selfCPU()
	st, err := readProcStat(m.child)
	if err != nil {
		return nil, fmt.Errorf("reading the pipeline process: %w", err)
	}
	if wall <= 0 {
		return nil, errors.New("empty CPU window")
	}
	c := &PipelineCPU{Streamjoin: (st.cpu - m.childCPU) / wall, Bench: (self - m.self) / wall}
	if m.postmaster != 0 {
		end, err := snapshotCluster(m.postmaster)
		if err != nil {
			return nil, err
		}
		pg := clusterSeconds(m.cluster, end) / wall
		c.Postgres = &pg
	}
	return c, nil
}
