// Package app wires the pipeline, the changelog relay and the API into one
// process, or the parts of them its Role asks for, and owns the shutdown
// order: stop polling, finish and commit the
// batch in flight, close the Kafka client; stop the relay (a Kafka
// transaction in flight is aborted: the next leader produces it again);
// close the PostgreSQL pool; then shut down HTTP (which answers /ready with
// 503 from the moment shutdown begins).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/retry"
	"github.com/streamjoin/streamjoin/internal/store"
)

// Config is the whole process's configuration.
type Config struct {
	// Role is which parts run (see Role). Default RoleAll.
	Role   Role
	Kafka  kafka.Config
	Store  store.Config
	Ingest ingest.Config
	API    api.Config
	// Changelog configures the changelog relay; an empty Topic turns the
	// changelog off. Its SourceTopic, CreateTopic and ReplicationFactor
	// come from Ingest.
	Changelog changelog.Config
	// RawLogs configures the raw logs' daily partitions and retention
	// (roles that ingest maintain them).
	RawLogs store.RawLogConfig
	// DebugAddr, if set, serves Go's profiler (/debug/pprof/) there.
	DebugAddr string
}

// WithDefaults fills every component's defaults.
func (c Config) WithDefaults() Config {
	if c.Role == "" {
		c.Role = RoleAll
	}
	c.Kafka = c.Kafka.WithDefaults()
	c.Store = c.Store.WithDefaults()
	c.Ingest = c.Ingest.WithDefaults()
	if c.API.LookupTimeout == 0 {
		c.API.LookupTimeout = c.Store.QueryTimeout
	}
	c.API = c.API.WithDefaults()
	c.Store.Changelog = c.Changelog.Topic != ""
	c.Store.Enriched = c.Changelog.EnrichedTopic != ""
	c.Store.Activity = c.Changelog.ActivityTopic != ""
	c.Ingest.ReleaseEnriched = c.Store.Enriched
	c.Ingest.FireWindows = c.Store.Activity
	if c.relays() {
		c.Changelog.SourceTopic = c.Ingest.UserTopic
		c.Changelog.CreateTopic = c.Ingest.CreateTopics
		c.Changelog.ReplicationFactor = c.Ingest.ReplicationFactor
		c.Changelog = c.Changelog.WithDefaults()
	}
	return c
}

// Validate validates the role and every component it runs, and that the
// pool has room for the writers' lanes: a state lane and a log lane per
// writer. The api role's Kafka, ingest and changelog settings are not
// looked at: it uses none of them.
func (c Config) Validate() error {
	if err := c.Role.Validate(); err != nil {
		return err
	}
	if !c.Role.ingests() {
		sc := c.Store
		if sc.DSN == "" {
			sc.DSN = sc.ReadDSN // the api role connects to ReadDSN alone
		}
		return errors.Join(sc.Validate(), c.API.Validate())
	}
	err := errors.Join(c.Kafka.Validate(), c.Store.Validate(), c.Ingest.Validate(), c.API.Validate(), c.RawLogs.WithDefaults().Validate())
	if err == nil && c.relays() {
		err = c.Changelog.Validate()
	}
	if err == nil && int(c.Store.MaxConns) < 2*c.Ingest.Writers {
		err = fmt.Errorf("writers %d: its %d lanes (a state and a log lane each) must not exceed pg-max-conns %d", c.Ingest.Writers, 2*c.Ingest.Writers, c.Store.MaxConns)
	}
	return err
}

// Run starts the API, then applies the migrations (waiting for PostgreSQL
// while it is unreachable), then starts the pipeline, and blocks until ctx
// is canceled or a component fails. /health answers from the start; reads
// and /ready answer 503 until the schema is migrated and the consumer has
// joined its group. The role decides what runs (see Role): the api role
// waits for the schema instead of migrating it and starts no pipeline.
// onListening, if not nil, is called with the API's address once it is
// bound. Run returns nil after a clean shutdown.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, onListening func(net.Addr)) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger = logger.With("role", string(cfg.Role))
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	storeClosed := false
	defer func() {
		if !storeClosed {
			st.Close()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var (
		conn     *kafka.Connector
		consumer *ingest.Consumer
		relay    *changelog.Relay
		joined   func() bool // nil: the api role, in no group
	)
	if cfg.Role.ingests() {
		if conn, err = kafka.New(cfg.Kafka, logger.With("component", "kafka"), reg); err != nil {
			return err
		}
		if consumer, err = ingest.New(cfg.Ingest, conn, st, ingest.NewMetrics(reg), logger.With("component", "ingest")); err != nil {
			return err
		}
		joined = consumer.Joined
		registerOutputs(reg, st, cfg.Store)
		if cfg.relays() {
			if relay, err = changelog.New(cfg.Changelog, conn, st, reg, logger.With("component", "changelog")); err != nil {
				return err
			}
		}
	}
	srv, err := api.New(cfg.API, st, joined, reg, logger.With("component", "api"))
	if err != nil {
		return err
	}
	if err := srv.RegisterMetrics(reg); err != nil {
		return fmt.Errorf("registering http metrics: %w", err)
	}
	if cfg.Role == RoleIngest {
		srv.ServeProbesOnly()
	}
	if consumer != nil {
		srv.ShowDeadLetters(deadLetterLog{consumer})
	}
	// HTTP comes first, so that /health answers while PostgreSQL is still
	// being waited for; reads answer 503 until the schema is migrated.
	migrated := make(chan struct{})
	srv.StartAfter(migrated)
	// SIGHUP re-reads the token files. Caught only when one is set (and
	// before the API listens, so that no SIGHUP after onListening ends the
	// process); otherwise SIGHUP keeps its default.
	var hangups chan os.Signal
	if srv.HasTokens() {
		hangups = make(chan os.Signal, 1)
		signal.Notify(hangups, syscall.SIGHUP)
		defer signal.Stop(hangups)
	}
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	if onListening != nil {
		onListening(addr)
	}

	g, gctx := errgroup.WithContext(ctx)
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	ingestDone, relayDone, maintDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	g.Go(func() error {
		defer close(maintDone)
		if consumer == nil {
			return nil
		}
		select {
		case <-migrated:
		case <-gctx.Done():
			return nil
		}
		return st.RunRawLogMaintenance(gctx, cfg.RawLogs, logger.With("component", "rawlogs"))
	})
	g.Go(func() error {
		defer close(relayDone)
		if relay == nil {
			return nil
		}
		select {
		case <-migrated:
		case <-gctx.Done():
			return nil
		}
		return relay.Run(gctx)
	})
	g.Go(func() error {
		defer close(ingestDone)
		if consumer == nil { // the api role
			if err := WaitForSchema(gctx, st, logger); err != nil {
				if gctx.Err() != nil {
					return nil
				}
				return err
			}
			close(migrated)
			return nil
		}
		if err := Migrate(gctx, st, logger); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		close(migrated)
		// A rejected login or an untrusted certificate ends the start here,
		// clearly; an unreachable broker is waited for.
		if err := conn.Check(gctx); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		return consumer.Run(gctx)
	})
	g.Go(func() error { return srv.Run(httpCtx) })
	if hangups != nil {
		g.Go(func() error { reloadOnHangup(httpCtx, hangups, srv); return nil })
	}
	if cfg.DebugAddr != "" {
		g.Go(func() error { return api.RunDebug(httpCtx, cfg.DebugAddr, logger) })
	}
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("shutting down")
		srv.Stopping()
		<-ingestDone
		<-relayDone
		<-maintDone
		st.Close()
		storeClosed = true
		logger.Info("postgres pool closed")
		stopHTTP()
		return nil
	})
	return g.Wait()
}

// reloadOnHangup calls srv.ReloadTokens (which logs what it did) on each
// signal from hangups until ctx is canceled.
func reloadOnHangup(ctx context.Context, hangups <-chan os.Signal, srv *api.Server) {
	for {
		select {
		case <-hangups:
			_ = srv.ReloadTokens() // logged there; the old tokens stay on failure
		case <-ctx.Done():
			return
		}
	}
}

// deadLetterLog shows the consumer's latest dead letters on the status page.
type deadLetterLog struct{ c *ingest.Consumer }

func (l deadLetterLog) RecentDeadLetters() []api.DeadLetter {
	var out []api.DeadLetter
	for _, d := range l.c.RecentDeadLetters() {
		out = append(out, api.DeadLetter(d))
	}
	return out
}

// Migrate applies the migrations, waiting for PostgreSQL while it is
// unreachable (logged once per change of state). Any other error (bad
// credentials, a failed migration, a bug) is returned at once.
func Migrate(ctx context.Context, st *store.Store, logger *slog.Logger) error {
	return retry.Do(ctx, retry.Policy{Initial: 500 * time.Millisecond, Max: 5 * time.Second}, logger, "applying migrations (waiting for postgres)", func() error {
		n, err := st.Migrate(ctx)
		if err != nil {
			if store.Classify(err) != store.Unavailable {
				return retry.Permanent(err)
			}
			return err
		}
		if n > 0 {
			logger.Info("migrations applied", "count", n, "schema", st.Schema())
		}
		return nil
	})
}
