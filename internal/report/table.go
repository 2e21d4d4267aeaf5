package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// TableOptions shape the text table. The zero value is the default.
type TableOptions struct {
	// TitleWidth is how many characters of the advisory summary the TITLE
	// column shows; 0 means 50, negative means all.
	TitleWidth int
	// LayerWidth is how many characters of the layer's created_by command
	// the LAYER column shows; 0 means 30, negative means all.
	LayerWidth int
	// ShowSuppressed lists each suppressed finding, with the reason, after
	// the summary.
	ShowSuppressed bool
}

const (
	defaultTitleWidth = 50
	defaultLayerWidth = 30
	// kevMarker marks findings in CISA's KEV catalog.
	kevMarker = "KEV"
)

func (o TableOptions) titleWidth() int {
	if o.TitleWidth == 0 {
		return defaultTitleWidth
	}
	return o.TitleWidth
}

func (o TableOptions) layerWidth() int {
	if o.LayerWidth == 0 {
		return defaultLayerWidth
	}
	return o.LayerWidth
}

// WriteTable writes the findings as an aligned table, one a row in the
// order given, then a summary line:
//
//	N vulnerabilities (K in KEV): C critical, H high, M medium, L low, U unknown — in P packages of TARGET; S suppressed
//
// and warnings for a stale database and a partial inventory. Text from the
// scan target and the database is stripped of control characters.
func WriteTable(w io.Writer, s *Scan, o TableOptions) error {
	if s == nil {
		return fmt.Errorf("write table: %w", errNilScan)
	}
	ew := &errWriter{w: w}
	if len(s.Findings) > 0 {
		tw := tabwriter.NewWriter(ew, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "KEV\tSEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tEPSS\tCVSS\tLAYER\tTITLE")
		for i := range s.Findings {
			fmt.Fprintln(tw, strings.Join(tableRow(&s.Findings[i], o), "\t"))
		}
		tw.Flush()
	}
	fmt.Fprintln(ew, cleanText(summaryLine(s)))
	if s.DB.Stale {
		built := "at an unknown time"
		if !s.DB.Built.IsZero() {
			built = "on " + s.DB.Built.UTC().Format("2006-01-02")
		}
		fmt.Fprintf(ew, "warning: the vulnerability database was built %s and is stale: recent advisories are missing\n", built)
	}
	if inv := s.inventory(); inv.Partial {
		fmt.Fprintf(ew, "partial result: %s could not be read, so packages may be missing\n", plural(len(inv.Errors), "input", "inputs"))
	}
	if o.ShowSuppressed && len(s.Suppressed) > 0 {
		fmt.Fprintln(ew, "\nSuppressed:")
		tw := tabwriter.NewWriter(ew, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPACKAGE\tINSTALLED\tREASON")
		for i := range s.Suppressed {
			f := &s.Suppressed[i].Finding
			fmt.Fprintln(tw, strings.Join([]string{
				cell(displayID(f)), cell(f.Package.Name), cell(installedVersion(f)), cell(s.Suppressed[i].Reason),
			}, "\t"))
		}
		tw.Flush()
	}
	if ew.err != nil {
		return fmt.Errorf("write table: %w", ew.err)
	}
	return nil
}

// tableRow renders one finding's cells.
func tableRow(f *vulnmatch.Finding, o TableOptions) []string {
	kev := ""
	if f.KEV != nil {
		kev = kevMarker
	}
	epss := ""
	if f.EPSS != nil {
		epss = formatPercent(f.EPSS.Score)
	}
	cvss := ""
	if f.CVSS != nil {
		cvss = strconv.FormatFloat(f.CVSS.BaseScore, 'f', 1, 64)
	}
	return []string{
		kev,
		severity(f),
		cell(displayID(f)),
		cell(f.Package.Name),
		cell(installedVersion(f)),
		cell(strings.Join(fixedVersions(f), ", ")),
		cell(epss),
		cell(cvss),
		cell(tableLayer(f.Package.Layer, o.layerWidth())),
		cell(truncate(cleanText(title(f)), o.titleWidth())),
	}
}

// formatPercent renders a probability as a percentage with one decimal.
func formatPercent(p float64) string {
	if p > 0 && p < 0.001 {
		return "<0.1%"
	}
	return strconv.FormatFloat(p*100, 'f', 1, 64) + "%"
}

// tableLayer is the layer's short diff ID and the command that made it.
func tableLayer(l *inventory.Layer, width int) string {
	if l == nil {
		return ""
	}
	d := l.ShortID()
	cmd := truncate(strings.Join(strings.Fields(cleanText(createdBy(l.CreatedBy))), " "), width)
	return strings.TrimSpace(d + " " + cmd)
}

// createdBy drops the shell boilerplate Docker puts in layer history.
func createdBy(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, "# buildkit")
	for _, p := range []string{"/bin/sh -c #(nop) ", "RUN /bin/sh -c ", "/bin/sh -c "} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			if p == "RUN /bin/sh -c " {
				s = "RUN " + s
			}
			break
		}
	}
	return strings.TrimSpace(s)
}

// summaryLine reads "N vulnerabilities (K in KEV): C critical, H high,
// M medium, L low, U unknown — in P packages of TARGET; S suppressed".
func summaryLine(s *Scan) string {
	sum := summarize(s)
	return fmt.Sprintf("%s (%d in KEV): %d critical, %d high, %d medium, %d low, %d unknown — in %s of %s; %d suppressed",
		plural(sum.Total, "vulnerability", "vulnerabilities"), sum.KEV,
		sum.Critical, sum.High, sum.Medium, sum.Low, sum.Unknown,
		plural(sum.Packages, "package", "packages"), targetName(s.inventory()), sum.Suppressed)
}

// cell makes s fit one table cell: control characters become spaces or
// '?', and an empty cell shows "-".
func cell(s string) string {
	s = cleanText(s)
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// errWriter remembers the first write error and drops later writes, so that
// the table code can print without checking each call.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
