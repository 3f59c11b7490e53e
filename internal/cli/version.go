package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is what --version and `streamjoin version` print: the module
// version the Go toolchain stamped (a tag, or a pseudo-version from the VCS
// revision), else the VCS revision alone, else "devel" (a build with
// -buildvcs=false).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return versionOf(bi)
}

// versionOf is version's rule applied to bi.
func versionOf(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	if rev := buildSetting(bi, "vcs.revision"); rev != "" {
		return rev
	}
	return "devel"
}

func buildSetting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// versionDetails is `streamjoin version`'s output: the version, then what
// the build info says of the source and the toolchain.
func versionDetails(bi *debug.BuildInfo) string {
	out := "streamjoin " + versionOf(bi) + "\n"
	for _, l := range []struct{ label, key string }{
		{"revision", "vcs.revision"}, {"committed", "vcs.time"}, {"modified", "vcs.modified"},
	} {
		if v := buildSetting(bi, l.key); v != "" {
			out += fmt.Sprintf("  %-10s %s\n", l.label, v)
		}
	}
	return out + fmt.Sprintf("  %-10s %s\n", "go", bi.GoVersion)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build's version, its source revision and Go version (from the build info)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, ok := debug.ReadBuildInfo()
			if !ok {
				fmt.Fprintln(cmd.OutOrStdout(), "streamjoin devel (no build info)")
				return nil
			}
			fmt.Fprint(cmd.OutOrStdout(), versionDetails(bi))
			return nil
		},
	}
}
