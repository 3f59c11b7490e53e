// Package cli is streamjoin's command line: the only place flags,
// environment variables and the config file are read. Each command builds the
// components' config structs and hands them to the packages that run them.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/store"
)

// Main runs the command line with args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "streamjoin:", err)
		return 1
	}
	return 0
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "streamjoin",
		Short: "Joins Kafka user and organization event streams into PostgreSQL and serves the result over HTTP",
		Long: `streamjoin consumes the user_events and org_events topics, keeps an
event-time-correct current state of users and organizations in PostgreSQL
(exactly once: offsets are committed in the same transaction as the data), and
serves the joined result at GET /users/{name}.

Settings come from flags, then STREAMJOIN_* environment variables, then the
YAML file given by --config (keys are the flag names).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newDevCmd(), newProduceCmd(), newMigrateCmd())
	return root
}

// withConfig wraps a command's RunE so that it first applies the environment
// and the config file to the flags left unset.
func withConfig(cmd *cobra.Command, configPath *string, run func(cmd *cobra.Command) error) {
	cmd.Flags().StringVar(configPath, "config", "", "YAML config file; keys are flag names")
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyConfig(cmd.Flags(), *configPath); err != nil {
			return err
		}
		return run(cmd)
	}
}

func newRunCmd() *cobra.Command {
	var (
		cfg        app.Config
		logCfg     logConfig
		configPath string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipeline and the HTTP API against your Kafka and PostgreSQL",
		Example: `  streamjoin run --brokers kafka1:9092,kafka2:9092 \
    --postgres postgres://streamjoin@db:5432/app --http-addr :8080`,
	}
	appFlags(cmd.Flags(), &cfg, ":8080")
	logFlags(cmd.Flags(), &logCfg)
	documentEnv(cmd.Flags())
	withConfig(cmd, &configPath, func(cmd *cobra.Command) error {
		logger, err := logCfg.logger()
		if err != nil {
			return err
		}
		// Flags carry the defaults, so validate what was asked for: an
		// explicit 0 must fail, not silently become a default.
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("invalid configuration: %w", err)
		}
		return app.Run(cmd.Context(), cfg, logger, nil)
	})
	return cmd
}

func newMigrateCmd() *cobra.Command {
	var (
		cfg        store.Config
		logCfg     logConfig
		configPath string
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded schema migrations and exit",
	}
	storeFlags(cmd.Flags(), &cfg)
	logFlags(cmd.Flags(), &logCfg)
	documentEnv(cmd.Flags())
	withConfig(cmd, &configPath, func(cmd *cobra.Command) error {
		logger, err := logCfg.logger()
		if err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("invalid configuration: %w", err)
		}
		st, err := store.Open(cmd.Context(), cfg, logger)
		if err != nil {
			return err
		}
		defer st.Close()
		n, err := st.Migrate(cmd.Context())
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "schema %s: %d migration(s) applied\n", cfg.Schema, n)
		return nil
	})
	return cmd
}
