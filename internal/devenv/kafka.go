package devenv

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaConfig configures the embedded broker.
type KafkaConfig struct {
	// Addr is host:port to listen on. kfake listens on 127.0.0.1 only, so
	// the host must be 127.0.0.1 or localhost. Port 0 picks a free port.
	Addr string
	// Dir persists topics and offsets across restarts. Empty: in memory.
	Dir string
	// Partitions is the default partition count of auto-created topics.
	Partitions int
}

// StartKafka starts a single-broker, in-process Kafka-protocol cluster that
// any Kafka client can use. Close the returned cluster when done.
func StartKafka(cfg KafkaConfig, logger *slog.Logger) (*kfake.Cluster, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("kafka-addr %q: %w", cfg.Addr, err)
	}
	if host != "127.0.0.1" && host != "localhost" {
		return nil, fmt.Errorf("kafka-addr %q: the embedded broker listens on 127.0.0.1 only", cfg.Addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("kafka-addr %q: bad port", cfg.Addr)
	}
	opts := []kfake.Opt{kfake.Ports(port), kfake.AllowAutoTopicCreation()}
	if cfg.Partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(cfg.Partitions))
	}
	if cfg.Dir != "" {
		opts = append(opts, kfake.DataDir(cfg.Dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting embedded kafka on %s: %w", cfg.Addr, err)
	}
	logger.Info("embedded Kafka broker ready", "addr", c.ListenAddrs()[0], "dir", cfg.Dir)
	return c, nil
}
