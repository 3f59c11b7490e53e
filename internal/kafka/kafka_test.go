package kafka

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{Config{Brokers: []string{"127.0.0.1:9092"}}, ""},
		{Config{}, "brokers: at least one broker"},
		{Config{Brokers: []string{"kafka1"}}, `brokers: "kafka1" is not host:port`},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// Every client carries the connection config; the first live client of a
// role carries kprom metrics labelled with it, a concurrent second one
// carries none (no duplicate registration), and closing frees the role.
func TestConnectorMetrics(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	reg := prometheus.NewRegistry()
	conn, err := New(Config{Brokers: cluster.ListenAddrs()}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.Config().ClientID; got != DefaultClientID {
		t.Errorf("client id = %q, want the default %q", got, DefaultClientID)
	}
	a, err := conn.NewClient("consumer")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	const connects = "streamjoin_kafka_connects_total"
	if n, err := testutil.GatherAndCount(reg, connects); err != nil || n == 0 {
		t.Fatalf("%s series after a ping = %d (%v), want at least 1", connects, n, err)
	}
	b, err := conn.NewClient("consumer") // same role while a is open: no metrics, no panic
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	a.Close()
	if n, err := testutil.GatherAndCount(reg, connects); err != nil || n != 0 {
		t.Fatalf("%s series after every client closed = %d (%v), want 0", connects, n, err)
	}
	c, err := conn.NewClient("consumer") // the role is free again
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, connects); err != nil || n == 0 {
		t.Fatalf("%s series for a new client of a released role = %d (%v), want at least 1", connects, n, err)
	}
}
