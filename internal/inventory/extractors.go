package inventory

import (
	"fmt"
	"log/slog"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/depsjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gobinary"
	javaarchive "github.com/google/osv-scalibr/extractor/filesystem/language/java/archive"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagejson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagelockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/pnpmlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/yarnlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/php/composerlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/pipfilelock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/poetrylock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/requirements"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/wheelegg"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemfilelock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemspec"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargoauditable"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargolock"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	"github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	scalibrlog "github.com/google/osv-scalibr/log"
)

// newExtractor is the constructor every osv-scalibr extractor exports.
type newExtractor func(*cpb.PluginConfig) (filesystem.Extractor, error)

// enabled lists the extractors Vigil runs: OS package databases, language
// lock files and manifests, and built artifacts (binaries, archives).
var enabled = []newExtractor{
	// OS packages.
	dpkg.New, apk.New, rpm.New,
	// Go binaries: main module, dependencies and the toolchain version.
	gobinary.New,
	// JavaScript: lock files and installed node_modules.
	packagelockjson.New, yarnlock.New, pnpmlock.New, packagejson.New,
	// Python: installed dist-info/egg-info and lock files.
	wheelegg.New, poetrylock.New, pipfilelock.New, requirements.New,
	// Java archives, nested jars included.
	javaarchive.New,
	// Rust: Cargo.lock and cargo-auditable binaries.
	cargolock.New, cargoauditable.New,
	// Ruby, PHP, .NET.
	gemfilelock.New, gemspec.New, composerlock.New, depsjson.New,
}

func extractors() ([]filesystem.Extractor, error) {
	cfg := &cpb.PluginConfig{}
	out := make([]filesystem.Extractor, 0, len(enabled))
	for _, n := range enabled {
		e, err := n(cfg)
		if err != nil {
			return nil, fmt.Errorf("creating extractor: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ExtractorNames lists the enabled extractors by name.
func (s *Scanner) ExtractorNames() []string {
	names := make([]string, 0, len(s.exts))
	for _, e := range s.exts {
		names = append(names, e.Name())
	}
	return names
}

// setScalibrLogger routes osv-scalibr's package-global logger into slog at
// debug level: its messages are diagnostics, not user output.
func setScalibrLogger(l *slog.Logger) { scalibrlog.SetLogger(slogAdapter{l}) }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Errorf(f string, args ...any) {
	a.l.Debug(fmt.Sprintf(f, args...), "source", "scalibr")
}
func (a slogAdapter) Error(args ...any) { a.l.Debug(fmt.Sprint(args...), "source", "scalibr") }
func (a slogAdapter) Warnf(f string, args ...any) {
	a.l.Debug(fmt.Sprintf(f, args...), "source", "scalibr")
}
func (a slogAdapter) Warn(args ...any) { a.l.Debug(fmt.Sprint(args...), "source", "scalibr") }
func (a slogAdapter) Infof(f string, args ...any) {
	a.l.Debug(fmt.Sprintf(f, args...), "source", "scalibr")
}
func (a slogAdapter) Info(args ...any) { a.l.Debug(fmt.Sprint(args...), "source", "scalibr") }
func (a slogAdapter) Debugf(f string, args ...any) {
	a.l.Debug(fmt.Sprintf(f, args...), "source", "scalibr")
}
func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "source", "scalibr") }
