package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/sbom"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// SARIF constants.
const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
	// fingerprintKey names Vigil's partial fingerprint; bump the suffix if
	// what is hashed ever changes.
	fingerprintKey = "vigilFinding/v1"
)

// GitHub code scanning's documented limits for one SARIF run
// (docs.github.com, "SARIF results exceed one or more limits"). Uploads
// over a maximum are rejected; of the results accepted, only the first
// 5,000 by GitHub's own severity ordering are shown.
const (
	maxResultsPerRun   = 25000
	shownResultsPerRun = 5000
	// maxHelpPackages bounds the package table in a rule's help.
	maxHelpPackages = 50
)

// sarifLimits are the limits WriteSARIF applies; tests lower them.
type sarifLimits struct {
	results int // results written at most
	shown   int // results GitHub shows; more get a note
}

// WriteSARIF writes the scan as a SARIF 2.1.0 log for GitHub code scanning:
// one run, one rule per advisory ID, one result per finding. A result's
// location is the file the package was found in, relative to the target
// root (for an image, a path inside the image; the image reference is in
// the properties). Its partial fingerprint hashes the advisory, the purl
// and the location, so alerts survive rescans.
//
// GitHub rejects runs with more than 25,000 results. Past that, the
// highest-risk 25,000 (the first, as findings arrive sorted by risk) are
// written, and the truncation is recorded in run.properties and as a
// warning notification on the invocation.
func WriteSARIF(w io.Writer, s *Scan) error {
	return writeSARIF(w, s, sarifLimits{results: maxResultsPerRun, shown: shownResultsPerRun})
}

func writeSARIF(w io.Writer, s *Scan, lim sarifLimits) error {
	if s == nil {
		return fmt.Errorf("write sarif: %w", errNilScan)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(buildSARIF(s, lim)); err != nil {
		return fmt.Errorf("write sarif: %w", err)
	}
	return nil
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
	Properties  sarifRunProps     `json:"properties"`
}

type sarifRunProps struct {
	Target          string   `json:"target"`
	TargetKind      string   `json:"targetKind,omitempty"`
	ImageRef        string   `json:"imageRef,omitempty"`
	ImageDigest     string   `json:"imageDigest,omitempty"`
	RepoTags        []string `json:"repoTags,omitempty"`
	OS              string   `json:"os,omitempty"`
	DBBuilt         string   `json:"dbBuilt,omitempty"`
	DBStale         bool     `json:"dbStale"`
	Partial         bool     `json:"partial"`
	Suppressed      int      `json:"suppressed"`
	TotalResults    int      `json:"totalResults"`
	ReportedResults int      `json:"reportedResults"`
	Truncated       bool     `json:"truncated"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	ShortDescription     sarifMessage       `json:"shortDescription"`
	FullDescription      sarifMessage       `json:"fullDescription"`
	HelpURI              string             `json:"helpUri,omitempty"`
	Help                 sarifMultiformat   `json:"help"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
	Properties           sarifRuleProps     `json:"properties"`
}

type sarifRuleProps struct {
	// SecuritySeverity is what GitHub ranks security alerts by: a CVSS-like
	// score from "0.0" to "10.0", as a string.
	SecuritySeverity string   `json:"security-severity,omitempty"`
	Tags             []string `json:"tags"`
	Precision        string   `json:"precision"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifMultiformat struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifMessage      `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          sarifResultProps  `json:"properties"`
}

type sarifResultProps struct {
	PURL             string   `json:"purl,omitempty"`
	Package          string   `json:"package"`
	InstalledVersion string   `json:"installedVersion,omitempty"`
	FixedVersions    []string `json:"fixedVersions"`
	Severity         string   `json:"severity"`
	CVSS             *float64 `json:"cvss,omitempty"`
	KEV              bool     `json:"kev"`
	EPSS             *float64 `json:"epss,omitempty"`
	Locations        []string `json:"locations,omitempty"`
	LayerDiffID      string   `json:"layerDiffId,omitempty"`
	LayerCreatedBy   string   `json:"layerCreatedBy,omitempty"`
	ImageRef         string   `json:"imageRef,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           sarifRegion           `json:"region"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

// sarifRegion points at the first line: a package database or binary has
// no better position, and GitHub wants one.
type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Descriptor sarifDescriptorRef `json:"descriptor"`
	Level      string             `json:"level"`
	Message    sarifMessage       `json:"message"`
}

type sarifDescriptorRef struct {
	ID string `json:"id"`
}

func buildSARIF(s *Scan, lim sarifLimits) *sarifLog {
	inv := s.inventory()
	findings := s.Findings
	total := len(findings)
	if lim.results > 0 && len(findings) > lim.results {
		findings = findings[:lim.results] // they are sorted by risk
	}

	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name: s.Tool.name(), Version: s.Tool.Version, InformationURI: s.Tool.InformationURI,
			Rules: []sarifRule{},
		}},
		Results: make([]sarifResult, 0, len(findings)),
	}
	imageRef := ""
	if inv.Image != nil || (inv.Target.Kind != "" && inv.Target.Kind != "dir") {
		imageRef = inv.Target.Name
	}

	// Rules, one per advisory ID, in order of first appearance; every
	// finding with that ID is listed in the rule's help.
	ruleIndex := map[string]int{}
	var byRule [][]*vulnmatch.Finding
	for i := range findings {
		f := &findings[i]
		n, ok := ruleIndex[f.ID]
		if !ok {
			n = len(byRule)
			ruleIndex[f.ID] = n
			byRule = append(byRule, nil)
		}
		byRule[n] = append(byRule[n], f)
	}
	for _, fs := range byRule {
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRuleFor(fs))
	}
	// There are never more rules than results, so GitHub's limit of 25,000
	// rules a run holds whenever its results limit does.

	for i := range findings {
		f := &findings[i]
		run.Results = append(run.Results, sarifResultFor(f, ruleIndex[f.ID], imageRef))
	}

	run.Properties = sarifRunProps{
		Target:          targetName(inv),
		TargetKind:      inv.Target.Kind,
		ImageRef:        imageRef,
		DBStale:         s.DB.Stale,
		Partial:         inv.Partial,
		Suppressed:      len(s.Suppressed),
		TotalResults:    total,
		ReportedResults: len(findings),
		Truncated:       len(findings) < total,
	}
	if img := inv.Image; img != nil {
		run.Properties.ImageDigest = img.Digest
		run.Properties.RepoTags = img.RepoTags
	}
	if os := inv.OS; os != nil {
		run.Properties.OS = strings.TrimSpace(os.ID + " " + os.VersionID)
	}
	if !s.DB.Built.IsZero() {
		run.Properties.DBBuilt = s.DB.Built.UTC().Format("2006-01-02T15:04:05Z")
	}
	run.Invocations = []sarifInvocation{{ExecutionSuccessful: true, ToolExecutionNotifications: sarifNotifications(s, lim, total, len(findings))}}

	return &sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}}
}

// sarifNotifications explains what a reader of the log must know: results
// left out, a partial inventory, a stale database.
func sarifNotifications(s *Scan, lim sarifLimits, total, reported int) []sarifNotification {
	var out []sarifNotification
	add := func(id, level, format string, args ...any) {
		out = append(out, sarifNotification{Descriptor: sarifDescriptorRef{ID: id}, Level: level, Message: sarifMessage{Text: fmt.Sprintf(format, args...)}})
	}
	if reported < total {
		add("vigil/results-truncated", "warning",
			"The scan found %d vulnerabilities; GitHub code scanning accepts at most %d results per run, so the %d highest-risk are reported and %d are left out.",
			total, lim.results, reported, total-reported)
	}
	if lim.shown > 0 && reported > lim.shown {
		add("vigil/results-over-display-limit", "note",
			"GitHub code scanning shows at most %d results per run, chosen by its own severity ordering; %d are reported.",
			lim.shown, reported)
	}
	if inv := s.inventory(); inv.Partial {
		msg := fmt.Sprintf("The inventory is partial: %s could not be read, so packages may be missing.", plural(len(inv.Errors), "input", "inputs"))
		if len(inv.Errors) > 0 {
			msg += fmt.Sprintf(" First: %s: %s", inv.Errors[0].Path, inv.Errors[0].Error)
		}
		add("vigil/partial-inventory", "warning", "%s", msg)
	}
	if s.DB.Stale {
		built := "at an unknown time"
		if !s.DB.Built.IsZero() {
			built = "on " + s.DB.Built.UTC().Format("2006-01-02")
		}
		add("vigil/stale-database", "warning", "The vulnerability database was built %s and is stale: recent advisories are missing.", built)
	}
	return out
}

// sarifRuleFor describes one advisory; fs are its findings, the first being
// the highest-risk.
func sarifRuleFor(fs []*vulnmatch.Finding) sarifRule {
	f := fs[0]
	_, helpURI := sbom.AdvisorySource(f.ID)
	short := title(f)
	if short == "" {
		short = displayID(f) + " in " + f.Package.Name
	}
	full := short
	if aliases := otherNames(f); len(aliases) > 0 {
		full += " (" + strings.Join(aliases, ", ") + ")"
	}

	tags := []string{"security", "vulnerability", strings.ToLower(severity(f))}
	if f.KEV != nil {
		tags = append(tags, "kev")
	}
	return sarifRule{
		ID:                   f.ID,
		ShortDescription:     sarifMessage{Text: short},
		FullDescription:      sarifMessage{Text: full},
		HelpURI:              helpURI,
		Help:                 sarifMultiformat{Text: helpText(fs, helpURI), Markdown: helpMarkdown(fs, helpURI)},
		DefaultConfiguration: sarifConfiguration{Level: sarifLevel(f)},
		Properties: sarifRuleProps{
			SecuritySeverity: securitySeverity(f),
			Tags:             tags,
			Precision:        "very-high",
		},
	}
}

// otherNames are the advisory's CVE and aliases other than its ID.
func otherNames(f *vulnmatch.Finding) []string {
	seen := map[string]bool{f.ID: true}
	var out []string
	for _, a := range append([]string{f.CVE}, f.Aliases...) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

func sarifResultFor(f *vulnmatch.Finding, ruleIndex int, imageRef string) sarifResult {
	p := &f.Package
	loc := ""
	if len(p.Locations) > 0 {
		loc = p.Locations[0]
	}
	fixed := fixedVersions(f)
	var msg strings.Builder
	fmt.Fprintf(&msg, "%s %s is affected by %s", p.Name, installedVersion(f), displayID(f))
	if sum := strings.TrimSpace(f.Summary); sum != "" {
		fmt.Fprintf(&msg, ": %s", strings.TrimRight(sum, "."))
	}
	msg.WriteString(".")
	if len(fixed) > 0 {
		fmt.Fprintf(&msg, " Fixed in %s.", strings.Join(fixed, ", "))
	} else {
		msg.WriteString(" No fix is available.")
	}
	if f.KEV != nil {
		fmt.Fprintf(&msg, " Known to be exploited (CISA KEV, added %s).", f.KEV.DateAdded)
	}

	props := sarifResultProps{
		PURL:             p.PURL,
		Package:          p.Name,
		InstalledVersion: installedVersion(f),
		FixedVersions:    nonNil(fixed),
		Severity:         severity(f),
		KEV:              f.KEV != nil,
		ImageRef:         imageRef,
	}
	if len(p.Locations) > 1 {
		props.Locations = p.Locations
	}
	if f.CVSS != nil {
		v := f.CVSS.BaseScore
		props.CVSS = &v
	}
	if f.EPSS != nil {
		v := f.EPSS.Score
		props.EPSS = &v
	}
	if l := p.Layer; l != nil {
		props.LayerDiffID, props.LayerCreatedBy = l.DiffID, l.CreatedBy
	}

	return sarifResult{
		RuleID:    f.ID,
		RuleIndex: ruleIndex,
		Level:     sarifLevel(f),
		Message:   sarifMessage{Text: msg.String()},
		Locations: []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{
			ArtifactLocation: sarifArtifactLocation{URI: artifactURI(loc, imageRef)},
			Region:           sarifRegion{StartLine: 1},
		}}},
		PartialFingerprints: map[string]string{fingerprintKey: fingerprint(f.ID, packageID(p), loc)},
		Properties:          props,
	}
}

// packageID is the package's purl, or type/name@version without one.
func packageID(p *inventory.Package) string {
	if p.PURL != "" {
		return p.PURL
	}
	return p.Type + "/" + p.Name + "@" + p.Version
}

// fingerprint is a stable hash of what makes a result the same across
// scans.
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// artifactURI turns a location (relative to the target root, with a
// leading slash) into a relative URI reference. A package without a
// location points at the image reference, or the target root.
func artifactURI(loc, imageRef string) string {
	p := strings.TrimLeft(loc, "/")
	if p == "" {
		p = imageRef
	}
	if p == "" {
		p = "."
	}
	// url.URL escapes what a URI may not contain and guards a first
	// segment with a colon ("a:b" would read as a scheme).
	return (&url.URL{Path: p}).String()
}

// sarifLevel: error for critical and high, warning for medium, note for
// low and unknown.
func sarifLevel(f *vulnmatch.Finding) string {
	switch severity(f) {
	case "CRITICAL", "HIGH":
		return "error"
	case "MEDIUM":
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS base score, or without one a score standing
// for the severity (as GitHub maps scores to severities: 9.0 and above
// critical, 7.0 high, 4.0 medium, above 0 low). "" for unknown severity.
func securitySeverity(f *vulnmatch.Finding) string {
	if f.CVSS != nil && f.CVSS.BaseScore > 0 && f.CVSS.BaseScore <= 10 {
		return strconv.FormatFloat(f.CVSS.BaseScore, 'f', 1, 64)
	}
	switch severity(f) {
	case "CRITICAL":
		return "9.5"
	case "HIGH":
		return "8.0"
	case "MEDIUM":
		return "5.5"
	case "LOW":
		return "2.0"
	}
	return ""
}

// riskFacts reads "Severity HIGH · CVSS 3.1 7.5 (vector) · EPSS 12.0%
// (percentile 95.0%) · in CISA KEV since 2021-11-03, due 2022-05-03".
func riskFacts(f *vulnmatch.Finding, sep string) string {
	facts := []string{"Severity " + severity(f)}
	if c := f.CVSS; c != nil {
		s := "CVSS " + strings.TrimSpace(c.Version+" "+strconv.FormatFloat(c.BaseScore, 'f', 1, 64))
		if c.Vector != "" {
			s += " (" + c.Vector + ")"
		}
		facts = append(facts, s)
	}
	if f.DistroSeverity != "" {
		facts = append(facts, "distribution severity "+f.DistroSeverity)
	}
	if e := f.EPSS; e != nil {
		facts = append(facts, "EPSS "+formatPercent(e.Score)+" (percentile "+formatPercent(e.Percentile)+")")
	}
	if k := f.KEV; k != nil {
		s := "in CISA KEV since " + k.DateAdded
		if k.DueDate != "" {
			s += ", due " + k.DueDate
		}
		if k.KnownRansomware {
			s += ", used in ransomware campaigns"
		}
		facts = append(facts, s)
	}
	return strings.Join(facts, sep)
}

func helpText(fs []*vulnmatch.Finding, helpURI string) string {
	f := fs[0]
	var b strings.Builder
	b.WriteString(displayID(f))
	if t := title(f); t != "" {
		b.WriteString(": " + t)
	}
	b.WriteString("\n" + riskFacts(f, "; ") + "\n\nAffected packages:\n")
	for i, g := range fs {
		if i == maxHelpPackages {
			fmt.Fprintf(&b, "… and %d more\n", len(fs)-i)
			break
		}
		fixed := strings.Join(fixedVersions(g), ", ")
		if fixed == "" {
			fixed = "no fix"
		}
		fmt.Fprintf(&b, "- %s %s, fixed in %s (%s)\n", g.Package.Name, installedVersion(g), fixed, firstLocation(&g.Package))
	}
	if helpURI != "" {
		b.WriteString("\n" + helpURI + "\n")
	}
	return b.String()
}

func helpMarkdown(fs []*vulnmatch.Finding, helpURI string) string {
	f := fs[0]
	var b strings.Builder
	b.WriteString("**" + mdEscape(displayID(f)) + "**")
	if t := title(f); t != "" {
		b.WriteString(": " + mdEscape(t))
	}
	b.WriteString("\n\n" + mdEscape(riskFacts(f, " · ")) + "\n\n")
	b.WriteString("| Package | Installed | Fixed | Location |\n| --- | --- | --- | --- |\n")
	for i, g := range fs {
		if i == maxHelpPackages {
			fmt.Fprintf(&b, "\n… and %d more\n", len(fs)-i)
			break
		}
		fixed := strings.Join(fixedVersions(g), ", ")
		if fixed == "" {
			fixed = "no fix"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdEscape(g.Package.Name), mdEscape(installedVersion(g)), mdEscape(fixed), mdEscape(firstLocation(&g.Package)))
	}
	if helpURI != "" {
		fmt.Fprintf(&b, "\n[%s](%s)\n", mdEscape(f.ID), helpURI)
	}
	return b.String()
}

func firstLocation(p *inventory.Package) string {
	if len(p.Locations) == 0 {
		return "-"
	}
	return p.Locations[0]
}

// mdEscaper backslash-escapes Markdown's punctuation, so that text from the
// scan target or the database renders as written and cannot inject links,
// HTML or table cells.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "{", `\{`, "}", `\}`, "[", `\[`, "]", `\]`,
	"(", `\(`, ")", `\)`, "#", `\#`, "+", `\+`, "!", `\!`, "|", `\|`, "<", `\<`, ">", `\>`,
)

func mdEscape(s string) string {
	return mdEscaper.Replace(cleanText(s))
}
