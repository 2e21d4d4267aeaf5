package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ScanSchema is the schema of the scan reports ParseScanReport reads:
// `vigil scan --format json` (internal/report/SCHEMA.md).
const ScanSchema = "vigil.scan/v1"

// maxReport bounds a scan report: an agent's comes in one message, a CI
// upload within the API's body limit.
const maxReport = 64 << 20

// scanReport is the part of a vigil.scan/v1 document the server reads.
// Fields it does not know are ignored, as SCHEMA.md asks of consumers.
type scanReport struct {
	Schema string `json:"schema"`
	Target struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"target"`
	Image *struct {
		Digest       string `json:"digest"`
		ConfigDigest string `json:"config_digest"`
	} `json:"image"`
	Findings []scanFinding     `json:"findings"`
	Packages []json.RawMessage `json:"packages"`
}

type scanFinding struct {
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases"`
	CVE      string   `json:"cve"`
	Summary  string   `json:"summary"`
	Severity string   `json:"severity"`
	Package  struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Type    string `json:"type"`
		PURL    string `json:"purl"`
	} `json:"package"`
	InstalledVersion string   `json:"installed_version"`
	FixedVersions    []string `json:"fixed_versions"`
	CVSS             *struct {
		BaseScore float64 `json:"base_score"`
	} `json:"cvss"`
	KEV  json.RawMessage `json:"kev"`
	EPSS *struct {
		Score float64 `json:"score"`
	} `json:"epss"`
}

var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)

const maxScanFindings = 1_000_000

// ParseScanReport reads a vigil.scan/v1 document into a Scan: Target,
// ImageDigest, Summary (counted from the findings), Findings in the
// report's risk order, and Report (the document itself). ID, Time, Source
// and SBOM are the caller's. Errors name the offending field. NUL bytes,
// which PostgreSQL refuses in text, become U+FFFD. Used for CI uploads
// (internal/server) and agents' scans (internal/hub) alike.
func ParseScanReport(report []byte) (Scan, error) {
	var sc Scan
	if len(bytes.TrimSpace(report)) == 0 {
		return sc, errors.New("report: empty")
	}
	if len(report) > maxReport {
		return sc, fmt.Errorf("report: %d bytes, more than %d", len(report), maxReport)
	}
	var doc scanReport
	if err := json.Unmarshal(report, &doc); err != nil {
		return sc, fmt.Errorf("report: %w", describeJSONError(err))
	}
	if doc.Schema != ScanSchema {
		return sc, fmt.Errorf("report: schema %q, want %q", doc.Schema, ScanSchema)
	}
	if doc.Target.Name == "" || len(doc.Target.Name) > 4096 {
		return sc, errors.New("report: target.name: 1 to 4096 bytes")
	}
	sc.Target = clean(doc.Target.Name)
	if doc.Image != nil {
		for _, d := range []struct{ field, v string }{{"image.digest", doc.Image.Digest}, {"image.config_digest", doc.Image.ConfigDigest}} {
			if d.v != "" && !digestRE.MatchString(d.v) {
				return sc, fmt.Errorf("report: %s: %q is not a digest (algorithm:hex)", d.field, d.v)
			}
		}
		sc.ImageDigest = doc.Image.Digest
		if sc.ImageDigest == "" {
			sc.ImageDigest = doc.Image.ConfigDigest
		}
	}
	if len(doc.Findings) > maxScanFindings {
		return sc, fmt.Errorf("report: findings: %d, more than %d", len(doc.Findings), maxScanFindings)
	}
	sc.Findings = make([]Finding, 0, len(doc.Findings))
	affected := map[string]bool{}
	for i := range doc.Findings {
		f, err := convertFinding(&doc.Findings[i])
		if err != nil {
			return sc, fmt.Errorf("report: findings[%d].%w", i, err)
		}
		sc.Findings = append(sc.Findings, f)
		sum := &sc.Summary
		sum.Findings++
		switch f.Severity {
		case "CRITICAL":
			sum.Critical++
		case "HIGH":
			sum.High++
		case "MEDIUM":
			sum.Medium++
		case "LOW":
			sum.Low++
		}
		if f.KEV {
			sum.KEV++
		}
		key := f.PURL
		if key == "" {
			key = f.Package + "@" + f.Version
		}
		affected[key] = true
	}
	// Packages counts every package scanned (the report's packages list),
	// not only the vulnerable ones.
	sc.Summary.Packages = len(doc.Packages)
	if sc.Summary.Packages < len(affected) {
		sc.Summary.Packages = len(affected)
	}
	sc.Report = cleanRaw(report)
	return sc, nil
}

func convertFinding(u *scanFinding) (Finding, error) {
	f := Finding{
		VulnID: clean(u.ID), CVE: clean(u.CVE), Package: clean(u.Package.Name), Version: clean(u.Package.Version),
		PackageType: clean(u.Package.Type), PURL: clean(u.Package.PURL), Summary: clean(u.Summary), Aliases: cleanAll(u.Aliases),
		FixedVersion: clean(strings.Join(u.FixedVersions, ", ")),
		Severity:     strings.ToUpper(u.Severity),
		KEV:          len(u.KEV) > 0 && !isNull(u.KEV),
	}
	switch {
	case f.VulnID == "" || len(f.VulnID) > 256:
		return f, errors.New("id: 1 to 256 bytes")
	case f.Package == "":
		return f, errors.New("package.name: empty")
	}
	switch f.Severity {
	case "CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN":
	case "":
		f.Severity = "UNKNOWN"
	default:
		return f, fmt.Errorf("severity: %q is not CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN", u.Severity)
	}
	if f.Version == "" {
		f.Version = clean(u.InstalledVersion)
	}
	if u.CVSS != nil {
		if u.CVSS.BaseScore < 0 || u.CVSS.BaseScore > 10 {
			return f, fmt.Errorf("cvss.base_score: %v is outside 0..10", u.CVSS.BaseScore)
		}
		f.CVSS = u.CVSS.BaseScore
	}
	if u.EPSS != nil {
		if u.EPSS.Score < 0 || u.EPSS.Score > 1 {
			return f, fmt.Errorf("epss.score: %v is outside 0..1", u.EPSS.Score)
		}
		f.EPSS = u.EPSS.Score
	}
	return f, nil
}

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// describeJSONError names the field of a type mismatch.
func describeJSONError(err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		return fmt.Errorf("%s: a JSON %s cannot be a %s", ute.Field, ute.Value, ute.Type)
	}
	return err
}

// PostgreSQL refuses NUL in text and the escape \u0000 in JSON (SQLSTATE
// 22021, 22P05): one such string from an agent or a CI upload would fail
// its write on every retry. Text from outside is cleaned before it is
// stored: NUL becomes U+FFFD.

// CleanText returns s with every NUL byte replaced by U+FFFD.
func CleanText(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// CleanTexts cleans each string of ss in place and returns ss.
func CleanTexts(ss []string) []string {
	for i, s := range ss {
		ss[i] = CleanText(s)
	}
	return ss
}

var nulEscape = []byte(`\u0000`)

// CleanJSON replaces the JSON escape \u0000 with \ufffd (the escaped text
// `\\u0000` changes too, harmlessly: it stays valid JSON).
func CleanJSON(b []byte) json.RawMessage {
	if !bytes.Contains(b, nulEscape) {
		return b
	}
	return bytes.ReplaceAll(b, nulEscape, []byte(`\ufffd`))
}

func clean(s string) string             { return CleanText(s) }
func cleanAll(ss []string) []string     { return CleanTexts(ss) }
func cleanRaw(b []byte) json.RawMessage { return CleanJSON(b) }
