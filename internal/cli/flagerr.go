package cli

import (
	"errors"
	"fmt"
	"strings"

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
		lines[i] = settingRef(name) + ": " + line + " (value from " + o.of(fs, name) + ")"
		named = true
	}
	if !named {
		return err
	}
	return &settingError{msg: strings.Join(lines, "\n"), cause: err}
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
// environment or the config file, naming the flag and its variable.
func flagParseError(_ *cobra.Command, err error) error {
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
	return err
}
