package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// origins records where the value of each flag set by applyConfig came
// from: its environment variable, or its key in the config file. A flag
// absent from it was set on the command line or kept its default.
type origins map[string]string

// of says where flag name's value came from, for error messages.
func (o origins) of(fs *pflag.FlagSet, name string) string {
	if src, ok := o[name]; ok {
		return src
	}
	if f := fs.Lookup(name); f != nil && f.Changed {
		return "the command line"
	}
	return "the default"
}

// settingRef names a flag in both the forms a user sets it in:
// "--http-addr [STREAMJOIN_HTTP_ADDR]", as --help shows it.
func settingRef(name string) string {
	return "--" + name + " [" + envName(name) + "]"
}

// settingError is an error about one or more settings, its message
// rewritten to name each setting's flag, variable and the origin of its
// value. It unwraps to the original error.
type settingError struct {
	msg   string
	cause error
}

func (e *settingError) Error() string { return e.msg }
func (e *settingError) Unwrap() error { return e.cause }

// nameSettings rewrites err so that every line that starts with the name of
// a flag of fs (the components' Validate methods name the setting first,
// as in "writers 0: must be between 1 and 64") also names its --flag, its
// STREAMJOIN_ variable and where the value came from. Lines that name no
// flag are kept as they are. A nil err stays nil.
func nameSettings(fs *pflag.FlagSet, o origins, err error) error {
	if err == nil {
		return nil
	}
	lines := strings.Split(err.Error(), "\n")
	named := false
	for i, line := range lines {
		name := leadingWord(line)
		if name == "" || name == "config" || fs.Lookup(name) == nil {
			continue
		}
		lines[i] = settingRef(name) + ": " + line + " (value from " + o.of(fs, name) + ")" + settingHint(name, err)
		named = true
	}
	if !named {
		return err
	}
	return &settingError{msg: strings.Join(lines, "\n"), cause: err}
}

// dsnForms is what --postgres and --postgres-read accept, shown when a
// connection string cannot be parsed.
const dsnForms = `
  accepted forms:
    URL:       postgres://user:password@host:5432/dbname?sslmode=verify-full
               (postgresql:// too; percent-encode special characters in the password)
    key=value: host=host port=5432 user=user password=secret dbname=dbname sslmode=verify-full
               (quote values with spaces: password='a b')`

// settingHint is advice to append to an error about setting name: the
// accepted forms of a connection string that could not be parsed.
func settingHint(name string, err error) string {
	var parse *pgconn.ParseConfigError
	if (name == "postgres" || name == "postgres-read") && errors.As(err, &parse) {
		return dsnForms
	}
	return ""
}

// leadingWord returns the flag-like word s starts with: lower-case letters,
// digits and dashes.
func leadingWord(s string) string {
	end := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	})
	if end < 0 {
		end = len(s)
	}
	return s[:end]
}

// flagParseError is cobra's flag error function: a value the command line
// gives a flag that cannot be parsed is reported like one from the
// environment or the config file, naming the flag and its variable; any
// other flag error (an unknown flag, a missing value) says which flag it
// may have meant and where to find the command's flags.
func flagParseError(cmd *cobra.Command, err error) error {
	var bad *pflag.InvalidValueError
	if errors.As(err, &bad) && bad.GetFlag() != nil && bad.Unwrap() != nil {
		val := bad.GetValue()
		if isSecret(bad.GetFlag()) {
			val = "[redacted]"
		}
		return &settingError{
			msg:   fmt.Sprintf("%s: invalid value %q from the command line: %v", settingRef(bad.GetFlag().Name), val, bad.Unwrap()),
			cause: err,
		}
	}
	return &settingError{msg: err.Error() + didYouMean(cmd, err) + "\n" + helpHint(cmd), cause: err}
}

// helpHint points at the help of cmd.
func helpHint(cmd *cobra.Command) string {
	return fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())
}

// didYouMean names cmd's flag closest to the unknown one err reports, if
// one is close enough to be a typo: " (did you mean --brokers?)".
func didYouMean(cmd *cobra.Command, err error) string {
	const prefix = "unknown flag: --"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return ""
	}
	unknown, _, _ := strings.Cut(strings.TrimPrefix(msg, prefix), "=")
	best, bestDist := "", 3 // at most two edits away
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if d := editDistance(unknown, f.Name); d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	if best == "" {
		return ""
	}
	return " (did you mean --" + best + "?)"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
