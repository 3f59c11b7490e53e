package cli

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// Every flag of every command that runs the service lands in a named
// group of --help: a new flag no rule of help.go places fails here, naming
// it, rather than being shown under the command's own flags. The other
// commands' own flags (--topic, --events …) have no group by design.
func TestEveryServiceFlagIsInAGroup(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"run", "dev"} {
		cmd, _, err := newRoot().Find([]string{path})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			n++
			if g := flagGroup(f); g == "" && !(path == "dev" && devOwnFlag(f.Name)) {
				t.Errorf("%s --%s is in no group of --help: add a rule to help.go", path, f.Name)
			}
		})
		if n < 40 {
			t.Fatalf("%s has %d flags; the walk saw too few to mean anything", path, n)
		}
	}
}

func devOwnFlag(name string) bool {
	return name == "kafka-addr" || name == "data-dir" || name == "sample" || name == "pg-port"
}

// --help shows each group under its title, a flag under its group, and
// the required flags marked; the flags of other engineers' areas land in
// their groups by prefix.
func TestHelpGroupsFlags(t *testing.T) {
	t.Parallel()
	code, out, errOut := runMain("run", "--help")
	if code != 0 {
		t.Fatalf("run --help = %d: %s", code, errOut)
	}
	sections := map[string]string{} // title → its text
	var title string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, "flags:") || line == "Flags:" {
			title = strings.TrimSuffix(line, ":")
			continue
		}
		if title != "" {
			sections[title] += line + "\n"
		}
	}
	for _, tt := range []struct{ section, flag string }{
		{"Kafka flags", "--brokers"},
		{"Kafka flags", "--kafka-sasl-mechanism"},
		{"Kafka flags", "--changelog-topic"},
		{"PostgreSQL flags", "--postgres "},
		{"PostgreSQL flags", "--pg-max-conns"},
		{"HTTP flags", "--http-addr"},
		{"HTTP flags", "--api-lookup-slots"},
		{"Ingest tuning flags", "--writers"},
		{"Ingest tuning flags", "--max-poll-records"},
		{"Logging flags", "--log-level"},
		{"General flags", "--config"},
	} {
		if !strings.Contains(sections[tt.section], tt.flag) {
			t.Errorf("run --help: %s not under %q; sections:\n%v", tt.flag, tt.section, out)
		}
	}
	for _, flag := range []string{"--brokers strings", "--postgres string"} {
		seen := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), flag) {
				seen = true
				if !strings.Contains(line, "(required") {
					t.Errorf("run --help: %s is not marked required: %q", flag, line)
				}
			}
		}
		if !seen {
			t.Errorf("run --help shows no line for %s", flag)
		}
	}
	for name, group := range map[string]string{"api-token-file": groupHTTP, "metrics-token-file": groupHTTP, "log-progress-interval": groupLogging, "kafka-new-thing": groupKafka, "pg-new-thing": groupPostgres} {
		if got := flagGroup(&pflag.Flag{Name: name}); got != group {
			t.Errorf("a new --%s would be in group %q, want %q", name, got, group)
		}
	}
}

// `streamjoin version` and `--version` print the version the build info
// holds; version prints the revision and Go version too.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, errOut := runMain(args...)
		if code != 0 || !strings.Contains(out, "streamjoin") || !strings.Contains(out, version()) {
			t.Errorf("%v = %d %q %q, want the version %q", args, code, out, errOut, version())
		}
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, tt := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"tagged", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"revision only", bi, "0123abc"},
		{"nothing stamped", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
	} {
		if got := versionOf(tt.bi); got != tt.want {
			t.Errorf("%s: versionOf = %q, want %q", tt.name, got, tt.want)
		}
	}
	details := versionDetails(bi)
	for _, want := range []string{"streamjoin 0123abc", "revision   0123abc", "committed  2026-01-02T03:04:05Z", "modified   true", "go         go1.26.0"} {
		if !strings.Contains(details, want) {
			t.Errorf("version output %q: want %q", details, want)
		}
	}
}

// Errors guide the user: an unknown flag or command points at --help (and
// at the flag meant, for a typo); a DSN that cannot be parsed lists the
// accepted forms and names the flag and its variable.
func TestErrorsGuideTheUser(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown flag", []string{"run", "--bogus"}, []string{"unknown flag: --bogus", "Run 'streamjoin run --help' for usage."}},
		{"typo", []string{"run", "--broker", "k:9092"}, []string{"did you mean --brokers?", "streamjoin run --help"}},
		{"subcommand", []string{"dlq", "list", "--topik", "x"}, []string{"did you mean --topic?", "Run 'streamjoin dlq list --help' for usage."}},
		{"missing value", []string{"produce", "--topic"}, []string{"needs an argument", "streamjoin produce --help"}},
		{"unknown command", []string{"frob"}, []string{`unknown command "frob"`, "streamjoin --help"}},
		{"URL DSN", []string{"run", "--brokers", "k:9092", "--postgres", "postgres://u@h:port/db"},
			[]string{"--postgres [STREAMJOIN_POSTGRES]", "accepted forms", "postgres://user:password@host:5432/dbname", "host=host port=5432"}},
		{"key=value DSN", []string{"run", "--role", "api", "--postgres-read", "nonsense"},
			[]string{"--postgres-read [STREAMJOIN_POSTGRES_READ]", "accepted forms", "key=value"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runMain(tt.args...)
			if code == 0 {
				t.Fatalf("%v: exit 0", tt.args)
			}
			for _, want := range tt.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("%v: stderr %q, want %q", tt.args, errOut, want)
				}
			}
		})
	}
	// A DSN error about something else (here a missing one) lists no forms.
	_, _, errOut := runMain("run", "--brokers", "k:9092")
	if strings.Contains(errOut, "accepted forms") {
		t.Errorf("a missing DSN lists the forms as if it could not be parsed: %q", errOut)
	}
}
