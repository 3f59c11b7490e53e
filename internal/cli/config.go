package cli

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/store"
)

const envPrefix = "STREAMJOIN_"

// envName is the environment variable of a flag: --http-addr is
// STREAMJOIN_HTTP_ADDR.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// documentEnv appends each flag's environment variable to its usage, so that
// --help documents every way to set it.
func documentEnv(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Name == "config" {
			return
		}
		f.Usage += " [" + envName(f.Name) + "]"
	})
}

// applyConfig fills the flags that were not given on the command line from
// the environment (STREAMJOIN_*) and then from the YAML file named by
// --config, in that order of precedence; it returns where each value it set
// came from. Values go through the flags' own parsers, so an explicit 0 is
// kept (for Validate to judge) and a bad value fails naming the flag, its
// variable and its source. A key of the file that is not a flag's name is
// an error. List flags take a YAML list or a comma-separated string.
//
// This is hand-written rather than koanf's posflag provider on purpose.
// The config structs are bound to the flags, so the flags are both the top
// layer and the destination: posflag would copy them into koanf only for a
// loop like the one below to copy koanf back into them, and that loop must
// still ask the env and file layers separately where each value came from,
// to name the source of a bad value. Tried with posflag: the same tests
// pass and they still pass with the posflag layer deleted, so it would be
// code that does nothing.
func applyConfig(fs *pflag.FlagSet, configPath string) (origins, error) {
	k := koanf.New(".")
	if configPath != "" {
		if err := k.Load(file.Provider(configPath), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config file %s: %w", configPath, err)
		}
		var unknown []string
		for _, key := range k.Keys() {
			// Keys are the file's leaves: a map under a flag's name
			// gives "name.sub", which is not a setting either.
			if fs.Lookup(key) == nil || key == "config" {
				unknown = append(unknown, key)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return nil, fmt.Errorf("config file %s: unknown setting(s) %s (see --help)", configPath, strings.Join(unknown, ", "))
		}
	}
	envVals := koanf.New(".")
	if err := envVals.Load(env.Provider(envPrefix, ".", func(k string) string {
		return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, envPrefix)), "_", "-")
	}), nil); err != nil {
		return nil, fmt.Errorf("reading environment: %w", err)
	}
	from := origins{}
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" {
			return
		}
		var val string
		switch {
		case envVals.Exists(f.Name):
			from[f.Name], val = envName(f.Name), envVals.String(f.Name)
		case k.Exists(f.Name):
			from[f.Name], val = "config file key "+f.Name, configString(k.Get(f.Name))
		default:
			return
		}
		var err error
		if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
			err = sv.Replace(splitList(val))
		} else {
			err = f.Value.Set(val)
		}
		if err != nil {
			if isSecret(f) {
				val = "[redacted]"
			}
			errs = append(errs, fmt.Sprintf("%s: invalid value %q from %s: %v", settingRef(f.Name), val, from[f.Name], err))
		}
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid setting: %s", strings.Join(errs, "; "))
	}
	return from, nil
}

func configString(v any) string {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(v)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func storeFlags(fs *pflag.FlagSet, c *store.Config) {
	fs.StringVar(&c.DSN, "postgres", "", "PostgreSQL connection string (URL or key=value)")
	fs.StringVar(&c.Schema, "schema", store.DefaultSchema, "PostgreSQL schema holding streamjoin's tables")
	fs.Int32Var(&c.MaxConns, "pg-max-conns", store.DefaultMaxConns, "maximum PostgreSQL connections")
	fs.DurationVar(&c.QueryTimeout, "query-timeout", store.DefaultQueryTimeout, "timeout of each API read and readiness ping")
	fs.DurationVar(&c.IdleInTransactionTimeout, "pg-idle-in-transaction-timeout", store.DefaultIdleInTransactionTimeout, "PostgreSQL ends a session idle this long inside a transaction (a frozen process), releasing its locks")
}

func ingestFlags(fs *pflag.FlagSet, c *ingest.Config) {
	d := ingest.DefaultConfig()
	fs.StringVar(&c.Group, "group", d.Group, "Kafka consumer group")
	fs.StringVar(&c.InstanceID, "instance-id", "", "static group member id (KIP-345), stable per process, e.g. the pod name: a restart resumes at once instead of after --session-timeout (default: a dynamic member)")
	fs.StringVar(&c.UserTopic, "user-topic", d.UserTopic, "topic of user events")
	fs.StringVar(&c.OrgTopic, "org-topic", d.OrgTopic, "topic of organization events")
	fs.StringVar(&c.DLQSuffix, "dlq-suffix", d.DLQSuffix, "suffix naming each source topic's dead-letter topic")
	fs.BoolVar(&c.CreateTopics, "create-topics", d.CreateTopics, "create missing source and dead-letter topics at start")
	fs.Int32Var(&c.Partitions, "partitions", d.Partitions, "partition count of topics streamjoin creates")
	fs.Int16Var(&c.ReplicationFactor, "replication-factor", d.ReplicationFactor, "replication factor of created topics (-1: broker default)")
	fs.StringVar(&c.StartOffset, "start-offset", d.StartOffset, "where partitions with no stored offset start: earliest or latest")
	fs.IntVar(&c.MaxPollRecords, "max-poll-records", d.MaxPollRecords, "most records in one batch (one transaction)")
	fs.IntVar(&c.FetchMaxBytes, "fetch-max-bytes", d.FetchMaxBytes, "most bytes one Kafka fetch returns; bounds the memory of records waiting to be processed")
	fs.IntVar(&c.Writers, "writers", d.Writers, "parallel transactions per batch, each for its own share of the partitions")
	fs.IntVar(&c.MaxValueBytes, "max-value-bytes", d.MaxValueBytes, "larger record values go to the dead-letter topic")
	fs.DurationVar(&c.RetryBackoffMax, "retry-backoff-max", d.RetryBackoffMax, "cap of the backoff between retries of a failed write")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "how long the batch in flight may take to commit at shutdown")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", d.SessionTimeout, "how long the group waits for a silent member before reassigning its partitions")
	progress := &durationFlag{p: &c.ProgressInterval}
	*progress.p = d.ProgressInterval
	fs.Var(progress, "log-progress-interval", "how often to log a progress line (records/s, records behind, dead letters) while records are committed (none while idle)")
	fs.Var(&aliasFlag{fs: fs, to: "log-progress-interval", target: progress}, "progress-interval", "the former name of --log-progress-interval")
	_ = fs.MarkDeprecated("progress-interval", "use --log-progress-interval")
	fs.DurationVar(&c.RebalanceTimeout, "rebalance-timeout", d.RebalanceTimeout, "how long a rebalance waits for each member to finish its batch and rejoin")
	fs.DurationVar(&c.MaxOutOfOrderness, "max-out-of-orderness", d.MaxOutOfOrderness, "how far, in event time, an event may be behind the newest of its partition: a partition's watermark is its newest event time minus this")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", d.IdleTimeout, "a partition caught up with no records for this long stops holding its topic's watermark back")
	fs.DurationVar(&c.WatermarkInterval, "watermark-interval", d.WatermarkInterval, "how often watermarks are advanced and idle partitions marked")
}

// durationFlag is a duration flag bound to p that knows whether anything
// (command line, environment, file) set it.
type durationFlag struct {
	p   *time.Duration
	set bool
}

func (v *durationFlag) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}
func (v *durationFlag) Type() string { return "duration" }
func (v *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*v.p, v.set = d, true
	return nil
}

// aliasFlag is a deprecated flag's value: setting it sets the flag to of
// fs (whose value is target) instead, unless that flag has a value of its
// own. So the old name keeps working from the command line, the
// environment or the file, the new name wins when both are given at the
// same level, and either given on the command line wins over the other
// from the environment or the file (applyConfig skips flags marked
// Changed, which is why an alias from the command line marks its target).
type aliasFlag struct {
	fs     *pflag.FlagSet
	to     string
	target *durationFlag
}

func (a *aliasFlag) String() string { return a.target.String() }
func (a *aliasFlag) Type() string   { return a.target.Type() }
func (a *aliasFlag) Set(s string) error {
	to := a.fs.Lookup(a.to)
	if to.Changed || a.target.set {
		_, err := time.ParseDuration(s) // still refuse a bad value
		return err
	}
	if err := a.target.Set(s); err != nil {
		return err
	}
	a.target.set = false // set by the alias, not by its own name
	to.Changed = true
	return nil
}

func apiFlags(fs *pflag.FlagSet, c *api.Config, defaultAddr string) {
	d := api.Config{Addr: defaultAddr}.WithDefaults()
	fs.StringVar(&c.Addr, "http-addr", d.Addr, "address the HTTP API listens on")
	fs.DurationVar(&c.ReadHeaderTimeout, "http-read-header-timeout", d.ReadHeaderTimeout, "HTTP read header timeout")
	fs.DurationVar(&c.ReadTimeout, "http-read-timeout", d.ReadTimeout, "HTTP read timeout")
	fs.DurationVar(&c.WriteTimeout, "http-write-timeout", d.WriteTimeout, "HTTP write timeout")
	fs.DurationVar(&c.IdleTimeout, "http-idle-timeout", d.IdleTimeout, "HTTP keep-alive idle timeout")
	fs.DurationVar(&c.ShutdownTimeout, "http-shutdown-timeout", d.ShutdownTimeout, "how long in-flight requests may drain at shutdown")
	fs.IntVar(&c.MaxNameBytes, "max-name-bytes", d.MaxNameBytes, "longest accepted user name in GET /users/{name}")
	fs.IntVar(&c.MaxResults, "max-results", d.MaxResults, "most users returned for one name")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", d.MaxInFlight, "most concurrent HTTP requests; past it the API answers 503")
	fs.IntVar(&c.LookupSlots, "api-lookup-slots", d.LookupSlots, "most user queries the API runs at once; lookups arriving while all are busy share the next query")
	fs.IntVar(&c.LookupBatch, "api-lookup-batch", d.LookupBatch, "most names one API query looks up (1: no merging)")
	fs.IntVar(&c.MaxBatchNames, "max-batch-names", d.MaxBatchNames, "most names one GET /users?name=…&name=… may ask for; more is a 400")
	fs.StringVar(&c.APITokenFile, "api-token-file", "", "file of bearer tokens (one a line, or sha256:<hex> of one; # comments) the data routes (/users…, /organizations…) require; re-read on SIGHUP (default: open)")
	fs.StringVar(&c.MetricsTokenFile, "metrics-token-file", "", "file of bearer tokens, same format, that /health, /ready and /metrics require; re-read on SIGHUP (default: open)")
}

// kafkaFlags are the connection settings every Kafka client shares: the
// brokers, SASL and TLS (see docs/operations.md, "Secured connections").
func kafkaFlags(fs *pflag.FlagSet, c *kafka.Config, defaultBrokers []string) {
	fs.StringSliceVar(&c.Brokers, "brokers", defaultBrokers, "Kafka seed brokers, host:port, comma-separated")
	fs.StringVar(&c.SASL.Mechanism, "kafka-sasl-mechanism", "", "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)")
	fs.StringVar(&c.SASL.Username, "kafka-sasl-username", "", "Kafka SASL username")
	fs.Var(secretValue{&c.SASL.Password}, "kafka-sasl-password", "Kafka SASL password; prefer --kafka-sasl-password-file or the variable, as a flag shows in the process list")
	fs.StringVar(&c.SASL.PasswordFile, "kafka-sasl-password-file", "", "file holding the Kafka SASL password (e.g. a mounted secret), read at start")
	fs.BoolVar(&c.TLS.Enable, "kafka-tls", false, "connect to Kafka over TLS")
	fs.StringVar(&c.TLS.CAFile, "kafka-tls-ca-file", "", "PEM file of the CAs that sign the Kafka brokers' certificates (default: the system's)")
	fs.StringVar(&c.TLS.CertFile, "kafka-tls-cert-file", "", "PEM client certificate, for brokers that require mutual TLS (with --kafka-tls-key-file)")
	fs.StringVar(&c.TLS.KeyFile, "kafka-tls-key-file", "", "PEM key of --kafka-tls-cert-file")
	fs.StringVar(&c.TLS.ServerName, "kafka-tls-server-name", "", "name the brokers' certificates must carry (default: each broker's host)")
	fs.BoolVar(&c.TLS.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "INSECURE: accept any broker certificate; anyone on the path can pose as the broker and read the password and the data (test clusters only)")
}

// secretValue is a string flag whose value never prints: --help, errors
// and anything that formats the flag show "[redacted]".
type secretValue struct{ p *kafka.Secret }

func (v secretValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v secretValue) Set(s string) error { *v.p = kafka.Secret(s); return nil }
func (v secretValue) Type() string       { return "string" }

// redactDSN returns a PostgreSQL connection string fit to print: the
// password of a URL's userinfo and every password or sslpassword parameter
// (URL query or key=value) replaced by xxxxx. A string it cannot parse as a
// URL is treated as key=value.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.Redacted()
	}
	return dsnPasswordKV.ReplaceAllString(dsn, "${1}xxxxx")
}

// dsnPasswordKV matches a password or sslpassword in a key=value
// connection string, quoted (with \' escapes) or not.
var dsnPasswordKV = regexp.MustCompile(`((?:^|\s)(?:ssl)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S*)`)

// isSecret reports whether f holds a secret, whose value an error must not
// repeat.
func isSecret(f *pflag.Flag) bool {
	_, ok := f.Value.(secretValue)
	return ok
}

func appFlags(fs *pflag.FlagSet, c *app.Config, defaultAddr string) {
	kafkaFlags(fs, &c.Kafka, nil)
	storeFlags(fs, &c.Store)
	ingestFlags(fs, &c.Ingest)
	apiFlags(fs, &c.API, defaultAddr)
	changelogFlags(fs, &c.Changelog)
	enrichedFlags(fs, c)
	rawLogFlags(fs, &c.RawLogs)
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (default: off)")
}

// runFlags are run's own settings: which role the process plays and
// where the API reads.
func runFlags(fs *pflag.FlagSet, c *app.Config) {
	fs.StringVar((*string)(&c.Role), "role", string(app.RoleAll), "what this process runs: all (the pipeline and the API), ingest (the pipeline; HTTP serves /health, /ready and /metrics only) or api (GET /users/… only: no Kafka, no migrations; waits for the schema)")
	fs.StringVar(&c.Store.ReadDSN, "postgres-read", "", "PostgreSQL connection string the API reads through, e.g. a read replica (whose replay lag the reads then show); the api role connects only to it (default: --postgres)")
}

type logConfig struct {
	level  string
	format string
}

func logFlags(fs *pflag.FlagSet, c *logConfig) {
	fs.StringVar(&c.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.format, "log-format", "text", "log format: text or json")
}

func (c logConfig) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("log-level %q: want debug, info, warn or error", c.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log-format %q: want text or json", c.format)
}
