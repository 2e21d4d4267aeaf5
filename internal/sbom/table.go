package sbom

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// WriteTable writes r to w as an aligned text table, one package a row,
// followed by a summary line and, for partial results, a line counting the
// errors. Text from the target is stripped of control characters, so that a
// package name cannot move the cursor or recolour a terminal.
func WriteTable(w io.Writer, r *inventory.Report) error {
	if r == nil {
		return fmt.Errorf("write table: %w", errNilReport)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if _, err := fmt.Fprintln(tw, "NAME\tVERSION\tTYPE\tSOURCE\tLAYER\tLOCATION"); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for i := range r.Packages {
		p := &r.Packages[i]
		if _, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(p.Name), cell(p.Version), cell(p.Type),
			cell(tableSource(p)), cell(p.Layer.ShortID()), cell(tableLocation(p.Locations))); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if _, err := fmt.Fprintln(w, cleanText(summaryLine(r))); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if r.Partial {
		if _, err := fmt.Fprintf(w, "partial result: %s\n", plural(len(r.Errors), "error", "errors")); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	return nil
}

// summaryLine reads "N packages (deb: 3, npm: 1) in KIND:NAME".
func summaryLine(r *inventory.Report) string {
	counts := map[string]int{}
	for i := range r.Packages {
		t := r.Packages[i].Type
		if t == "" {
			t = "unknown"
		}
		counts[t]++
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	slices.Sort(types)
	byType := make([]string, 0, len(types))
	for _, t := range types {
		byType = append(byType, fmt.Sprintf("%s: %d", t, counts[t]))
	}

	var b strings.Builder
	b.WriteString(plural(len(r.Packages), "package", "packages"))
	if len(byType) > 0 {
		b.WriteString(" (" + strings.Join(byType, ", ") + ")")
	}
	b.WriteString(" in ")
	if r.Target.Kind != "" && r.Target.Name != "" {
		b.WriteString(r.Target.Kind + ":")
	}
	b.WriteString(targetName(r))
	return b.String()
}

// tableSource is the source package, with its version when that differs
// from the binary package's.
func tableSource(p *inventory.Package) string {
	if p.SourceName == "" {
		return ""
	}
	if p.SourceVersion == "" || p.SourceVersion == p.Version {
		return p.SourceName
	}
	return p.SourceName + "@" + p.SourceVersion
}

// tableLocation is the first location, with a count of the others.
func tableLocation(locs []string) string {
	switch len(locs) {
	case 0:
		return ""
	case 1:
		return locs[0]
	default:
		return fmt.Sprintf("%s (+%d)", locs[0], len(locs)-1)
	}
}

// cell makes s fit one table cell: control characters (tabs and newlines
// included) become spaces or '?', and an empty cell shows "-".
func cell(s string) string {
	return orDash(cleanText(s))
}

// cleanText replaces whitespace control characters with a space and every
// other control or format character (such as terminal escapes and
// bidirectional overrides) with '?'.
func cleanText(s string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			return ' '
		case unicode.IsControl(c) || unicode.Is(unicode.Cf, c):
			return '?'
		default:
			return c
		}
	}, s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
