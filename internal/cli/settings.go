package cli

import (
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Setting is one flag of a command: its name, its environment variable
// (empty for flags the environment cannot set, such as --config) and its
// default as --help shows it.
type Setting struct {
	Flag    string
	Env     string
	Default string
}

// Settings lists every runnable command's settings, keyed by the command's
// path below the root ("run", "dlq list"), each list sorted by flag name.
// It is what deploy/ checks its manifests against: a flag or a STREAMJOIN_*
// variable not listed here is not read by that command. Each call builds a
// fresh command tree, so it is safe to call from several goroutines.
func Settings() map[string][]Setting {
	out := map[string][]Setting{}
	var walk func(c *cobra.Command, path string)
	walk = func(c *cobra.Command, path string) {
		if c.Runnable() && path != "" {
			var list []Setting
			c.Flags().VisitAll(func(f *pflag.Flag) {
				s := Setting{Flag: f.Name, Default: f.DefValue}
				if f.Name != "help" && f.Name != "config" {
					s.Env = envName(f.Name)
				}
				list = append(list, s)
			})
			sort.Slice(list, func(i, j int) bool { return list[i].Flag < list[j].Flag })
			out[path] = list
		}
		for _, sub := range c.Commands() {
			p := sub.Name()
			if path != "" {
				p = path + " " + p
			}
			walk(sub, p)
		}
	}
	walk(newRoot(), "")
	return out
}
