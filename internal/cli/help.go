package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The groups --help sorts a command's settings into, in the order it shows
// them. A command's own flags (--topic, --events …), which belong to none,
// come first, under "Flags".
const (
	groupKafka    = "Kafka"
	groupPostgres = "PostgreSQL"
	groupHTTP     = "HTTP"
	groupIngest   = "Ingest tuning"
	groupLogging  = "Logging"
	groupGeneral  = "General"
)

var groupOrder = []string{groupKafka, groupPostgres, groupHTTP, groupIngest, groupLogging, groupGeneral}

// groupAnnotation, set on a flag, puts it in a group by name, ahead of the
// rules of flagGroup.
const groupAnnotation = "streamjoin_group"

// groupByPrefix: a flag whose name starts with one of these belongs to its
// group, so that a new --kafka-…, --pg-…, --http-…, --api-…, --metrics-…
// or --log-… flag lands in its group without a change here.
var groupByPrefix = []struct{ prefix, group string }{
	{"kafka-", groupKafka},
	{"changelog-", groupKafka},
	{"postgres", groupPostgres},
	{"pg-", groupPostgres},
	{"raw-", groupPostgres},
	{"http-", groupHTTP},
	{"api-", groupHTTP},
	{"metrics-", groupHTTP},
	{"log-", groupLogging},
}

// groupByName places the flags no prefix names.
var groupByName = map[string]string{
	"brokers": groupKafka, "group": groupKafka, "instance-id": groupKafka,
	"user-topic": groupKafka, "org-topic": groupKafka, "dlq-suffix": groupKafka,
	"create-topics": groupKafka, "partitions": groupKafka, "replication-factor": groupKafka,
	"start-offset": groupKafka, "session-timeout": groupKafka, "rebalance-timeout": groupKafka,

	"schema": groupPostgres, "query-timeout": groupPostgres,

	"max-name-bytes": groupHTTP, "max-results": groupHTTP, "max-in-flight": groupHTTP,
	"max-batch-names": groupHTTP, "debug-addr": groupHTTP,

	"max-poll-records": groupIngest, "writers": groupIngest, "fetch-max-bytes": groupIngest,
	"max-value-bytes": groupIngest, "retry-backoff-max": groupIngest, "shutdown-timeout": groupIngest,
	"progress-interval": groupIngest, "max-out-of-orderness": groupIngest, "idle-timeout": groupIngest,
	"watermark-interval": groupIngest,

	"config": groupGeneral, "role": groupGeneral, "help": groupGeneral, "version": groupGeneral,
}

// flagGroup is the group f is shown in: its annotation, else the first
// prefix of groupByPrefix it has, else groupByName; "" for a command's own
// flag.
func flagGroup(f *pflag.Flag) string {
	if g := f.Annotations[groupAnnotation]; len(g) > 0 {
		return g[0]
	}
	for _, p := range groupByPrefix {
		if strings.HasPrefix(f.Name, p.prefix) {
			return p.group
		}
	}
	return groupByName[f.Name]
}

// inGroup puts the flags names of fs in group, whatever the rules say.
func inGroup(fs *pflag.FlagSet, group string, names ...string) {
	for _, n := range names {
		_ = fs.SetAnnotation(n, groupAnnotation, []string{group})
	}
}

// markRequired marks flag name of fs as required in --help, with a note
// on when ("except with --role api"); empty: always. It is for --help
// only: the command's validation enforces it, since the value may come
// from the environment or the config file as well.
func markRequired(fs *pflag.FlagSet, name, when string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("markRequired: no flag " + name)
	}
	note := "required"
	if when != "" {
		note += ", " + when
	}
	f.Usage += " (" + note + ")"
}

// groupedUsage is every command's usage function: cobra's, with the flags
// listed by group.
func groupedUsage(c *cobra.Command) error {
	w := c.OutOrStderr()
	fmt.Fprint(w, "Usage:")
	if c.Runnable() {
		fmt.Fprintf(w, "\n  %s", c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\n  %s [command]", c.CommandPath())
	}
	if c.HasExample() {
		fmt.Fprintf(w, "\n\nExamples:\n%s", c.Example)
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprint(w, "\n\nAvailable Commands:")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(w, "\n  %-*s %s", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
	}
	writeFlagGroups(w, c.LocalFlags())
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\n\nUse \"%s [command] --help\" for more information about a command.", c.CommandPath())
	}
	fmt.Fprintln(w)
	return nil
}

// writeFlagGroups writes the visible flags of fs, one section per group
// that has any: the command's own first, then groupOrder's.
func writeFlagGroups(w io.Writer, fs *pflag.FlagSet) {
	sets := map[string]*pflag.FlagSet{}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		g := flagGroup(f)
		if sets[g] == nil {
			sets[g] = pflag.NewFlagSet(g, pflag.ContinueOnError)
			sets[g].SortFlags = fs.SortFlags
		}
		sets[g].AddFlag(f)
	})
	for _, g := range append([]string{""}, groupOrder...) {
		set := sets[g]
		if set == nil {
			continue
		}
		title := g + " flags"
		if g == "" {
			title = "Flags"
		}
		fmt.Fprintf(w, "\n\n%s:\n%s", title, strings.TrimRight(set.FlagUsages(), "\n"))
	}
}
