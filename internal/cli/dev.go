package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/produce"
	"github.com/streamjoin/streamjoin/internal/sample"
)

func newDevCmd() *cobra.Command {
	var (
		cfg        app.Config
		kafkaAddr  string
		dataDir    string
		loadSample bool
		pgPort     int
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything embedded: a Kafka-protocol broker, a private PostgreSQL, the pipeline and the API",
		Long: `dev starts an in-process Kafka-protocol broker (any Kafka client can use it
at --kafka-addr), a private PostgreSQL cluster in --data-dir (unless --postgres
is given) on 127.0.0.1:--pg-port, the pipeline and the API. State survives
restarts in --data-dir, so --sample is needed once: start again without it
to keep the data as it is. SIGINT or SIGTERM stops everything cleanly.

The private cluster's DSN, for psql and other tools:
  postgres://postgres@127.0.0.1:54320/postgres?sslmode=disable  (schema streamjoin)`,
		Example: `  streamjoin dev --sample    # the first time: load the sample dataset
  streamjoin dev             # later: the same state, nothing reloaded
  curl localhost:8080/users/Ripley
  psql 'postgres://postgres@127.0.0.1:54320/postgres' -c 'table streamjoin.user_profiles'`,
	}
	fs := cmd.Flags()
	fs.StringVar(&kafkaAddr, "kafka-addr", "127.0.0.1:9092", "address of the embedded Kafka broker (127.0.0.1 only)")
	fs.StringVar(&dataDir, "data-dir", ".streamjoin", "directory for the broker's and PostgreSQL's data")
	fs.BoolVar(&loadSample, "sample", false, "produce the sample dataset at start (once is enough: the state survives restarts)")
	fs.IntVar(&pgPort, "pg-port", defaultDevPGPort, "port of the private PostgreSQL, on 127.0.0.1 (0: any free port); unused with --postgres")
	inGroup(fs, groupPostgres, "pg-port")
	inGroup(fs, groupKafka, "kafka-addr")
	inGroup(fs, groupGeneral, "data-dir", "sample")
	appFlags(fs, &cfg, "127.0.0.1:8080")
	_ = fs.MarkHidden("brokers") // dev's broker is --kafka-addr
	validate := func() error {
		if _, _, err := net.SplitHostPort(kafkaAddr); err != nil {
			return fmt.Errorf("kafka-addr %q: want host:port", kafkaAddr)
		}
		if pgPort < 0 || pgPort > 65535 {
			return fmt.Errorf("pg-port %d: want a TCP port, or 0 for any free one", pgPort)
		}
		c := cfg
		c.Kafka.Brokers = []string{kafkaAddr}
		if c.Store.DSN == "" {
			c.Store.DSN = "postgres://private-cluster" // replaced once it is up
		}
		return c.Validate()
	}
	withConfig(cmd, validate, func(cmd *cobra.Command, logger *slog.Logger) error {
		return runDev(cmd, cfg, logger, kafkaAddr, dataDir, loadSample, pgPort)
	})
	return cmd
}

// defaultDevPGPort is the private PostgreSQL's port: fixed, so that its
// DSN is the same on every start (README gives it), and off 5432, so that
// it leaves a system PostgreSQL alone.
const defaultDevPGPort = 54320

func runDev(cmd *cobra.Command, cfg app.Config, logger *slog.Logger, kafkaAddr, dataDir string, loadSample bool, pgPort int) error {
	ctx := cmd.Context()
	cfg.Kafka.Brokers = []string{kafkaAddr}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("data-dir %s: %w", dataDir, err)
	}

	broker, err := devenv.StartKafka(devenv.KafkaConfig{Addr: kafkaAddr, Dir: filepath.Join(dataDir, "kafka"), Partitions: int(cfg.Ingest.Partitions)}, logger)
	if err != nil {
		return err
	}
	defer func() {
		broker.Close()
		logger.Info("embedded Kafka broker stopped")
	}()
	kafkaAddr = broker.ListenAddrs()[0] // the bound address, when the port was 0
	cfg.Kafka.Brokers = []string{kafkaAddr}

	if !cmd.Flags().Changed("postgres") && os.Getenv(envName("postgres")) == "" {
		pgDir := filepath.Join(dataDir, "postgres")
		if !devenv.PostgresReachable(pgDir) {
			abs, _ := filepath.Abs(pgDir)
			pgDir = filepath.Join(os.TempDir(), "streamjoin-dev-postgres-"+fmt.Sprintf("%x", hash(abs)))
			logger.Warn("running as root and the data dir is not reachable by the postgres user; keeping PostgreSQL's data elsewhere", "dir", pgDir)
		}
		pg, err := devenv.StartPostgres(ctx, devenv.PostgresConfig{Dir: pgDir, Port: pgPort}, logger)
		if err != nil {
			return fmt.Errorf("%w (%s picks another port; 0: any free one)", err, settingRef("pg-port"))
		}
		defer func() {
			if err := pg.Stop(); err != nil {
				logger.Error("stopping postgres", "err", err)
			} else {
				logger.Info("private PostgreSQL stopped")
			}
		}()
		cfg.Store.DSN = pg.DSN
	}

	onListening := func(addr net.Addr) {
		host, port, _ := net.SplitHostPort(addr.String())
		if host == "::" || host == "0.0.0.0" || host == "" {
			host = "localhost"
		}
		fmt.Fprintf(cmd.OutOrStdout(), `
streamjoin dev is up
  Kafka broker : %s   (topics %s, %s; dead letters in *%s)
  PostgreSQL   : %s   (schema %s)
  HTTP API     : http://%s
  try          : curl http://%s/users/Ripley
  dead letters : streamjoin dlq list --brokers %s --topic %s%s
  stop         : Ctrl-C (the state stays in %s; start again without --sample to keep it as it is)
`, kafkaAddr, cfg.Ingest.UserTopic, cfg.Ingest.OrgTopic, cfg.Ingest.DLQSuffix, redactDSN(cfg.Store.DSN), cfg.Store.Schema,
			net.JoinHostPort(host, port), net.JoinHostPort(host, port), kafkaAddr, cfg.Ingest.UserTopic, cfg.Ingest.DLQSuffix, dataDir)
	}

	if loadSample {
		go func() {
			if err := produceSample(ctx, cfg.Kafka, logger, cfg.Ingest.UserTopic, cfg.Ingest.OrgTopic); err != nil && ctx.Err() == nil {
				logger.Error("producing the sample dataset", "err", err)
				return
			}
			logger.Info("sample dataset produced", "user_events", len(sample.UserEvents), "org_events", len(sample.OrgEvents))
		}()
	}
	return app.Run(ctx, cfg, logger, onListening)
}

// produceSample sends the sample events, keyed by event time as the seed
// does, so one user's events land on different partitions.
// It gives up after a minute.
func produceSample(ctx context.Context, kc kafka.Config, logger *slog.Logger, userTopic, orgTopic string) error {
	conn, err := kafka.New(kc, logger.With("component", "kafka"), nil)
	if err != nil {
		return err
	}
	cl, err := conn.NewClient("dev-sample", kgo.AllowAutoTopicCreation())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, t := range []struct {
		topic  string
		values []json.RawMessage
		key    string
	}{{userTopic, sample.UserEvents, "received_at"}, {orgTopic, sample.OrgEvents, "created_at"}} {
		if _, err := produce.Records(ctx, cl, t.topic, t.values, t.key, nil); err != nil {
			return err
		}
	}
	return nil
}

func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}
