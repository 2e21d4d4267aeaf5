// Package scan runs one whole scan of a target — inventory, vulnerability
// matching, suppression and risk ordering — the way `vigil scan`, a CI gate
// and later the agent use it. It composes the capability packages and adds
// no rules of its own.
package scan

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/vigil-cwpp/vigil/internal/artifact"
	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vex"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// Options configure a scan.
type Options struct {
	// Artifact bounds how the target is read; its Keep is set by Run.
	Artifact artifact.Options
	// DB is the vulnerability database; nil scans the inventory only.
	DB vulnmatch.Source
	// Filter suppresses findings (ignore file, VEX, severity, …); nil keeps all.
	Filter *vex.Filter
	// Walked, when set, is called for every file the extraction visits.
	Walked func()
	Logger *slog.Logger
}

// Result is one scanned target.
type Result struct {
	Inventory *inventory.Report
	// Findings are kept findings in risk order: KEV, EPSS, CVSS.
	Findings []vulnmatch.Finding
	// Suppressed are the findings the filter removed, with the reason.
	Suppressed []vex.Decision
	// Skipped counts packages that could not be matched, by reason.
	Skipped map[string]int
	// Matched is false when no database was given.
	Matched bool
}

// Run opens the target, extracts its inventory and, with a database,
// matches, filters and orders the findings. A partial inventory is still
// matched; the caller reads Inventory.Partial.
func Run(ctx context.Context, ref artifact.Ref, o Options) (*Result, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sc, err := inventory.New(o.Logger)
	if err != nil {
		return nil, err
	}
	sc.Walked = o.Walked
	ao := o.Artifact
	ao.Keep = sc.Keep
	if ao.Logger == nil {
		ao.Logger = o.Logger
	}
	a, err := artifact.Open(ctx, ref, ao)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	rep, err := sc.Scan(ctx, a)
	if err != nil {
		return nil, err
	}
	res := &Result{Inventory: rep}
	if o.DB == nil {
		return res, nil
	}
	m, err := vulnmatch.Match(ctx, o.DB, rep, vulnmatch.Options{Logger: o.Logger})
	if err != nil {
		return res, fmt.Errorf("matching %s: %w", ref, err)
	}
	res.Matched, res.Skipped = true, m.Skipped
	res.Findings = m.Findings
	if o.Filter != nil {
		res.Findings, res.Suppressed = o.Filter.Apply(res.Findings)
	}
	vulnmatch.SortByRisk(res.Findings)
	return res, nil
}
