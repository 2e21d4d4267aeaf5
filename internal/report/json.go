package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// JSONSchema is the value of the "schema" field of scan reports.
const JSONSchema = "vigil.scan/v1"

// The types below are the vigil.scan/v1 schema, documented field by field
// in SCHEMA.md. They are Vigil's own, not vulnmatch's or vulndb's, so that
// the schema changes only on purpose: add fields, never rename or remove
// them, within v1.

type jsonDocument struct {
	Schema     string                `json:"schema"`
	Tool       jsonTool              `json:"tool"`
	Target     inventory.Target      `json:"target"`
	OS         *inventory.OS         `json:"os,omitempty"`
	Image      *inventory.Image      `json:"image,omitempty"`
	DB         jsonDB                `json:"db"`
	Summary    jsonSummary           `json:"summary"`
	Findings   []jsonFinding         `json:"findings"`
	Suppressed []jsonSuppressed      `json:"suppressed"`
	Packages   []inventory.Package   `json:"packages"`
	Partial    bool                  `json:"partial"`
	Errors     []inventory.ScanError `json:"errors"`
}

type jsonTool struct {
	Name           string `json:"name"`
	Version        string `json:"version,omitempty"`
	InformationURI string `json:"information_uri,omitempty"`
}

type jsonDB struct {
	Built   time.Time    `json:"built,omitzero"`
	Stale   bool         `json:"stale"`
	Sources []jsonSource `json:"sources"`
}

type jsonSource struct {
	Name         string    `json:"name"`
	Records      int       `json:"records"`
	UpstreamDate time.Time `json:"upstream_date,omitzero"`
	FetchedAt    time.Time `json:"fetched_at,omitzero"`
	Origin       string    `json:"origin,omitempty"`
}

type jsonSummary struct {
	Total      int `json:"total"`
	KEV        int `json:"kev"`
	Critical   int `json:"critical"`
	High       int `json:"high"`
	Medium     int `json:"medium"`
	Low        int `json:"low"`
	Unknown    int `json:"unknown"`
	Fixable    int `json:"fixable"`
	Packages   int `json:"packages"`
	Suppressed int `json:"suppressed"`
}

type jsonFinding struct {
	ID               string         `json:"id"`
	Aliases          []string       `json:"aliases"`
	CVE              string         `json:"cve,omitempty"`
	Summary          string         `json:"summary,omitempty"`
	Severity         string         `json:"severity"`
	Package          jsonPackageRef `json:"package"`
	Ecosystem        string         `json:"ecosystem,omitempty"`
	MatchedName      string         `json:"matched_name,omitempty"`
	InstalledVersion string         `json:"installed_version"`
	FixedVersions    []string       `json:"fixed_versions"`
	CVSS             *jsonCVSS      `json:"cvss,omitempty"`
	DistroSeverity   string         `json:"distro_severity,omitempty"`
	KEV              *jsonKEV       `json:"kev,omitempty"`
	EPSS             *jsonEPSS      `json:"epss,omitempty"`
	References       []string       `json:"references"`
}

type jsonPackageRef struct {
	Name          string           `json:"name"`
	Version       string           `json:"version"`
	Type          string           `json:"type"`
	PURL          string           `json:"purl"`
	SourceName    string           `json:"source_name,omitempty"`
	SourceVersion string           `json:"source_version,omitempty"`
	Locations     []string         `json:"locations"`
	Layer         *inventory.Layer `json:"layer,omitempty"`
}

type jsonCVSS struct {
	Version   string  `json:"version"`
	Vector    string  `json:"vector,omitempty"`
	BaseScore float64 `json:"base_score"`
	Severity  string  `json:"severity,omitempty"`
	Source    string  `json:"source,omitempty"`
}

type jsonKEV struct {
	DateAdded       string `json:"date_added"`
	DueDate         string `json:"due_date,omitempty"`
	KnownRansomware bool   `json:"known_ransomware"`
	VendorProject   string `json:"vendor_project,omitempty"`
	Product         string `json:"product,omitempty"`
	Name            string `json:"name,omitempty"`
	RequiredAction  string `json:"required_action,omitempty"`
}

type jsonEPSS struct {
	Score      float64 `json:"score"`
	Percentile float64 `json:"percentile"`
	Date       string  `json:"date,omitempty"`
}

type jsonSuppressed struct {
	ID       string `json:"id"`
	CVE      string `json:"cve,omitempty"`
	Severity string `json:"severity"`
	Package  string `json:"package"`
	Version  string `json:"version"`
	PURL     string `json:"purl"`
	Reason   string `json:"reason"`
}

// WriteJSON writes the scan as one indented vigil.scan/v1 document (see
// SCHEMA.md). Lists are written as [] rather than null when empty.
func WriteJSON(w io.Writer, s *Scan) error {
	if s == nil {
		return fmt.Errorf("write json: %w", errNilScan)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(buildJSON(s)); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

func buildJSON(s *Scan) *jsonDocument {
	inv := s.inventory()
	sum := summarize(s)
	doc := &jsonDocument{
		Schema: JSONSchema,
		Tool:   jsonTool{Name: s.Tool.name(), Version: s.Tool.Version, InformationURI: s.Tool.InformationURI},
		Target: inv.Target,
		OS:     inv.OS,
		Image:  inv.Image,
		DB:     jsonDB{Built: s.DB.Built, Stale: s.DB.Stale, Sources: []jsonSource{}},
		Summary: jsonSummary{
			Total: sum.Total, KEV: sum.KEV,
			Critical: sum.Critical, High: sum.High, Medium: sum.Medium, Low: sum.Low, Unknown: sum.Unknown,
			Fixable: sum.Fixable, Packages: sum.Packages, Suppressed: sum.Suppressed,
		},
		Findings:   make([]jsonFinding, 0, len(s.Findings)),
		Suppressed: make([]jsonSuppressed, 0, len(s.Suppressed)),
		Packages:   nonNil(inv.Packages),
		Partial:    inv.Partial,
		Errors:     nonNil(inv.Errors),
	}
	for _, src := range s.DB.Sources {
		doc.DB.Sources = append(doc.DB.Sources, jsonSource{
			Name: src.Name, Records: src.Records, UpstreamDate: src.UpstreamDate,
			FetchedAt: src.FetchedAt, Origin: src.Origin,
		})
	}
	for i := range s.Findings {
		doc.Findings = append(doc.Findings, toJSONFinding(&s.Findings[i]))
	}
	for i := range s.Suppressed {
		d := &s.Suppressed[i]
		doc.Suppressed = append(doc.Suppressed, jsonSuppressed{
			ID: d.Finding.ID, CVE: d.Finding.CVE, Severity: severity(&d.Finding),
			Package: d.Finding.Package.Name, Version: d.Finding.Package.Version,
			PURL: d.Finding.Package.PURL, Reason: d.Reason,
		})
	}
	return doc
}

func toJSONFinding(f *vulnmatch.Finding) jsonFinding {
	p := &f.Package
	out := jsonFinding{
		ID:       f.ID,
		Aliases:  nonNil(f.Aliases),
		CVE:      f.CVE,
		Summary:  f.Summary,
		Severity: severity(f),
		Package: jsonPackageRef{
			Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL,
			SourceName: p.SourceName, SourceVersion: p.SourceVersion,
			Locations: nonNil(p.Locations), Layer: p.Layer,
		},
		Ecosystem:        f.Ecosystem,
		MatchedName:      f.MatchedName,
		InstalledVersion: installedVersion(f),
		FixedVersions:    nonNil(fixedVersions(f)),
		DistroSeverity:   f.DistroSeverity,
		References:       nonNil(f.References),
	}
	if c := f.CVSS; c != nil {
		out.CVSS = &jsonCVSS{Version: c.Version, Vector: c.Vector, BaseScore: c.BaseScore, Severity: c.Severity, Source: c.Source}
	}
	if k := f.KEV; k != nil {
		out.KEV = &jsonKEV{
			DateAdded: k.DateAdded, DueDate: k.DueDate, KnownRansomware: k.KnownRansomware,
			VendorProject: k.VendorProject, Product: k.Product, Name: k.Name, RequiredAction: k.RequiredAction,
		}
	}
	if e := f.EPSS; e != nil {
		out.EPSS = &jsonEPSS{Score: e.Score, Percentile: e.Percentile, Date: e.Date}
	}
	return out
}

// nonNil returns s, or an empty slice when s is nil, so that JSON shows [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
