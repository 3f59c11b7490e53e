package chaos_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

var (
	flagEvents = flag.Int("chaos.events", 100_000, "user events each chaos test produces")
	flagKills  = flag.Int("chaos.kills", 10, "SIGKILLs in TestCrashes")
	flagReport = flag.String("chaos.report", "", "append one JSON line of figures per test to this file")
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := testenv.Main(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds the real streamjoin binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "streamjoin-chaos-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "streamjoin")
		if out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/streamjoin").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// harness is one test's world: a broker, a schema, and the streamjoin
// processes it starts.
type harness struct {
	t       *testing.T
	broker  string
	kafka   *kfake.Cluster
	pgDSN   string
	schema  string
	conn    *pgx.Conn
	logDir  string
	nprocs  int
	topics  []string
	session time.Duration
	// extra are flags every process of the test gets after the harness's.
	extra []string
}

// setup starts a broker with both topics (6 partitions) and picks a fresh
// schema on the PostgreSQL at pgDSN ("" for the shared test server). With
// broker set, it uses that address and starts no broker.
func setup(t *testing.T, pgDSN, broker string) *harness {
	t.Helper()
	h := &harness{t: t, pgDSN: pgDSN, broker: broker, topics: []string{"user_events", "org_events"}, session: 2 * time.Second}
	if h.pgDSN == "" {
		h.pgDSN = testenv.PostgresDSN(t)
		h.schema = testenv.Schema(t)
	} else {
		h.schema = "chaos" // a private server, used by this test alone
	}
	if h.broker == "" {
		h.broker, h.kafka = testenv.Kafka(t, h.kafkaOpts()...)
	}
	h.logDir = t.TempDir()
	h.conn = h.connect()
	t.Cleanup(func() {
		if t.Failed() {
			h.dumpLogs()
		}
	})
	return h
}

// kafkaOpts are the broker's options: both topics, and a minimum session
// timeout below Kafka's 6s default so that the tests' 2s sessions are
// accepted.
func (h *harness) kafkaOpts() []kfake.Opt {
	return []kfake.Opt{
		kfake.SeedTopics(6, h.topics...),
		kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "500"}),
	}
}

func (h *harness) connect() *pgx.Conn {
	h.t.Helper()
	conn, err := pgx.Connect(context.Background(), h.pgDSN)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// reconnect replaces the harness's connection after a database restart.
func (h *harness) reconnect() { h.conn = h.connect() }

// privatePostgres starts a PostgreSQL of the test's own, which it may stop
// and start again on the same port and data.
func privatePostgres(t *testing.T) (start func() *devenv.Postgres) {
	t.Helper()
	dir, err := os.MkdirTemp("", "streamjoin-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755) // the postgres user must reach it when we run as root
	t.Cleanup(func() { os.RemoveAll(dir) })
	port := freePort(t)
	return func() *devenv.Postgres {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		pg, err := devenv.StartPostgres(ctx, devenv.PostgresConfig{Dir: filepath.Join(dir, "data"), Port: port, Fast: true}, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pg.Stop() })
		return pg
	}
}

func (h *harness) appName() string { return "sj-" + h.schema }

func (h *harness) dumpLogs() {
	entries, _ := os.ReadDir(h.logDir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(h.logDir, e.Name()))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		h.t.Logf("--- last lines of %s:\n%s", e.Name(), strings.Join(lines, "\n"))
	}
}

// groupMembers returns the members of the consumer group (the default
// group, "streamjoin") as the broker sees them.
func (h *harness) groupMembers() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.broker))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	groups, err := kadm.NewClient(cl).DescribeGroups(ctx, "streamjoin")
	if err != nil {
		return 0, fmt.Errorf("describing the group: %w", err)
	}
	g, ok := groups["streamjoin"]
	if !ok {
		return 0, errors.New("describing the group: the broker did not answer for it")
	}
	if g.Err != nil {
		return 0, fmt.Errorf("describing the group: %w", g.Err)
	}
	return len(g.Members), nil
}
