package cli

import "runtime/debug"

// version is what --version prints: the module version the Go toolchain
// stamped (a tag, or a pseudo-version from the VCS revision), else the VCS
// revision alone, else "devel" (a build with -buildvcs=false).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return "devel"
}
