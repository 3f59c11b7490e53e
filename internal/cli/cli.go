// Package cli is streamjoin's command line: the only place flags,
// environment variables and the config file are read. Each command builds the
// components' config structs and hands them to the packages that run them.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
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
		msg := err.Error()
		if strings.HasPrefix(msg, "unknown command") {
			msg += "\nRun 'streamjoin --help' for the commands."
		}
		fmt.Fprintln(stderr, "streamjoin:", msg)
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
		Version:       version(), // --version; the image test runs it
	}
	root.SetFlagErrorFunc(flagParseError) // inherited by every command
	root.SetUsageFunc(groupedUsage)       // inherited by every command
	root.AddCommand(newRunCmd(), newDevCmd(), newProduceCmd(), newMigrateCmd(), newDLQCmd(), newGenCmd(), newBenchCmd())
	root.AddCommand(newWatchCmd(), newVersionCmd())
	return root
}

// withConfig adds --config and the logging flags to cmd, and sets its RunE:
// apply the environment and the config file to the flags left unset, build
// the logger, run validate (nil: none), then run. Flags carry the defaults,
// so validate sees what was asked for: an explicit 0 fails rather than
// silently becoming a default. A validate error whose lines start with a
// flag's name (as the components' Validate methods do) is reported with the
// flag, its variable and where the value came from.
func withConfig(cmd *cobra.Command, validate func() error, run func(cmd *cobra.Command, logger *slog.Logger) error) {
	var (
		configPath string
		logCfg     logConfig
	)
	cmd.Flags().StringVar(&configPath, "config", "", "YAML config file; keys are flag names")
	logFlags(cmd.Flags(), &logCfg)
	documentEnv(cmd.Flags())
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		from, err := applyConfig(cmd.Flags(), configPath)
		if err != nil {
			return err
		}
		logger, err := logCfg.logger()
		if err != nil {
			return fmt.Errorf("invalid configuration: %w", nameSettings(cmd.Flags(), from, err))
		}
		if validate != nil {
			if err := validate(); err != nil {
				return fmt.Errorf("invalid configuration: %w", nameSettings(cmd.Flags(), from, err))
			}
		}
		return run(cmd, logger)
	}
}

func newRunCmd() *cobra.Command {
	var cfg app.Config
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipeline and the HTTP API against your Kafka and PostgreSQL",
		Example: `  streamjoin run --brokers kafka1:9092,kafka2:9092 \
    --postgres postgres://streamjoin@db:5432/app --http-addr :8080
  streamjoin run --role ingest --brokers kafka1:9092 --postgres postgres://streamjoin@db:5432/app
  streamjoin run --role api --postgres-read postgres://reader@replica:5432/app`,
	}
	appFlags(cmd.Flags(), &cfg, ":8080")
	runFlags(cmd.Flags(), &cfg)
	markRequired(cmd.Flags(), "brokers", "except with --role api")
	markRequired(cmd.Flags(), "postgres", "with --role api, --postgres-read may stand in")
	withConfig(cmd, func() error { return cfg.Validate() }, func(cmd *cobra.Command, logger *slog.Logger) error {
		return app.Run(cmd.Context(), cfg, logger, nil)
	})
	return cmd
}

func newMigrateCmd() *cobra.Command {
	var (
		cfg       store.Config
		grantRead string
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded schema migrations and exit",
		Example: `  streamjoin migrate --postgres postgres://streamjoin@db:5432/app
  streamjoin migrate --postgres postgres://streamjoin@db:5432/app --grant-read streamjoin_reader`,
	}
	storeFlags(cmd.Flags(), &cfg)
	cmd.Flags().StringVar(&grantRead, "grant-read", "", "after migrating, grant this existing PostgreSQL role read-only access to what the API reads (for run --role api); run it again after each upgrade")
	withConfig(cmd, func() error { return cfg.Validate() }, func(cmd *cobra.Command, logger *slog.Logger) error {
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
		if grantRead != "" {
			if err := st.GrantRead(cmd.Context(), grantRead); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema %s: role %q may read what the API reads, and nothing else\n", cfg.Schema, grantRead)
		}
		return nil
	})
	return cmd
}
