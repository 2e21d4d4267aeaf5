package frameworks

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

//go:embed report.html.tmpl
var reportHTML string

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"statusText": func(s string) string {
		switch s {
		case Met:
			return "Met"
		case NotMet:
			return "Not met"
		case Partial:
			return "Partial"
		case NoEvidence:
			return "No evidence"
		}
		return s
	},
	"basisText": func(b string) string {
		if b == Official {
			return "official crosswalk"
		}
		return "Vigil judgement"
	},
	"join": strings.Join,
	"onlyJudgement": func(ms []MappingRef) bool {
		for _, m := range ms {
			if m.Basis != Judgment {
				return false
			}
		}
		return true
	},
}).Parse(reportHTML))

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// no script, no external asset; every value from the evidence is escaped by
// html/template. Drill-down uses <details>, which needs no script.
func WriteHTML(w io.Writer, r *Report) error {
	return htmlTmpl.Execute(w, r)
}
