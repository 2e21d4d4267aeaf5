// Package version holds the build's version, set by the linker:
// -ldflags "-X github.com/vigil-cwpp/vigil/internal/version.Version=v1.2.3".
package version

import "runtime/debug"

// Version is the release version; "dev" for an untagged build.
var Version = "dev"

// Commit returns the VCS revision the binary was built from, if recorded.
func Commit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
