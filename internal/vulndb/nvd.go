package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// nvdRecord is what Vigil keeps of one NVD cve object.
type nvdRecord struct {
	ID           string
	LastModified time.Time
	Rejected     bool
	Metrics      []CVSS // sorted: newest version first, Primary before Secondary
}

// nvdPage is a parsed NVD API 2.0 response (or a single cve object, with
// Envelope false).
type nvdPage struct {
	Envelope       bool
	ResultsPerPage int
	StartIndex     int
	TotalResults   int
	Entries        int // elements of vulnerabilities[]
	Records        []nvdRecord
}

type nvdCVE struct {
	ID           string `json:"id"`
	LastModified string `json:"lastModified"`
	VulnStatus   string `json:"vulnStatus"`
	Metrics      struct {
		V40 []nvdMetric `json:"cvssMetricV40"`
		V31 []nvdMetric `json:"cvssMetricV31"`
		V30 []nvdMetric `json:"cvssMetricV30"`
		V2  []nvdMetric `json:"cvssMetricV2"`
	} `json:"metrics"`
}

type nvdMetric struct {
	Source       string `json:"source"`
	Type         string `json:"type"`         // Primary or Secondary
	BaseSeverity string `json:"baseSeverity"` // CVSS v2 keeps it here
	CVSSData     struct {
		Version      string   `json:"version"`
		VectorString string   `json:"vectorString"`
		BaseScore    *float64 `json:"baseScore"`
		BaseSeverity string   `json:"baseSeverity"`
	} `json:"cvssData"`
}

// parseNVD parses an NVD CVE API 2.0 response ({resultsPerPage, startIndex,
// totalResults, vulnerabilities: [{cve: …}]}), or one cve object, bare (as
// fkie-cad/nvd-json-data-feeds stores them) or as {"cve": …}. A record or
// metric that does not parse is skipped and counted in rep.
func parseNVD(data []byte, rep *SourceReport) (*nvdPage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not NVD JSON: %w", err)
	}
	page := &nvdPage{}
	var raws []json.RawMessage
	switch {
	case top["vulnerabilities"] != nil:
		var env struct {
			ResultsPerPage  int `json:"resultsPerPage"`
			StartIndex      int `json:"startIndex"`
			TotalResults    int `json:"totalResults"`
			Vulnerabilities []struct {
				CVE json.RawMessage `json:"cve"`
			} `json:"vulnerabilities"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			return nil, fmt.Errorf("not an NVD API 2.0 response: %w", err)
		}
		page.Envelope = true
		page.ResultsPerPage, page.StartIndex, page.TotalResults = env.ResultsPerPage, env.StartIndex, env.TotalResults
		for _, v := range env.Vulnerabilities {
			raws = append(raws, v.CVE)
		}
	case top["cve"] != nil:
		raws = []json.RawMessage{top["cve"]}
	case top["id"] != nil:
		raws = []json.RawMessage{data}
	default:
		return nil, errors.New("not NVD JSON: neither an API 2.0 response nor a cve object")
	}
	page.Entries = len(raws)
	for i, raw := range raws {
		rec, err := parseNVDCVE(raw, rep)
		if err != nil {
			rep.skip("invalid CVE record", "vulnerabilities[%d]: %v", i, err)
			continue
		}
		page.Records = append(page.Records, *rec)
	}
	if !page.Envelope && len(page.Records) == 0 {
		return nil, fmt.Errorf("invalid NVD cve object%s", rep.firstWarning())
	}
	return page, nil
}

// nvdTimeLayouts are the forms NVD uses (UTC without a zone) and RFC 3339.
var nvdTimeLayouts = []string{"2006-01-02T15:04:05.999999999", time.RFC3339Nano}

func parseNVDTime(s string) (time.Time, error) {
	var err error
	for _, l := range nvdTimeLayouts {
		var t time.Time
		if t, err = time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

func parseNVDCVE(raw json.RawMessage, rep *SourceReport) (*nvdRecord, error) {
	var c nvdCVE
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("no cve object")
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	id := normCVE(c.ID)
	if !cveRe.MatchString(id) {
		return nil, fmt.Errorf("id %.40q is not a CVE ID", c.ID)
	}
	rec := &nvdRecord{ID: id, Rejected: strings.EqualFold(c.VulnStatus, "Rejected")}
	if c.LastModified != "" {
		t, err := parseNVDTime(c.LastModified)
		if err != nil {
			rep.warnf("%s: lastModified %.40q: %v", id, c.LastModified, err)
		}
		rec.LastModified = t
	}
	for _, set := range []struct {
		version string
		ms      []nvdMetric
	}{{"4.0", c.Metrics.V40}, {"3.1", c.Metrics.V31}, {"3.0", c.Metrics.V30}, {"2.0", c.Metrics.V2}} {
		ms := append([]nvdMetric(nil), set.ms...)
		sort.SliceStable(ms, func(i, j int) bool {
			return strings.EqualFold(ms[i].Type, "Primary") && !strings.EqualFold(ms[j].Type, "Primary")
		})
		for _, m := range ms {
			cv, err := metricCVSS(set.version, m)
			if err != nil {
				rep.skip("invalid CVSS metric", "%s: CVSS %s metric from %s: %v", id, set.version, m.Source, err)
				continue
			}
			rec.Metrics = append(rec.Metrics, cv)
		}
	}
	return rec, nil
}

func metricCVSS(version string, m nvdMetric) (CVSS, error) {
	d := m.CVSSData
	if d.VectorString == "" {
		return CVSS{}, errors.New("no vectorString")
	}
	if d.BaseScore == nil {
		return CVSS{}, errors.New("no baseScore")
	}
	score := *d.BaseScore
	if math.IsNaN(score) || score < 0 || score > 10 {
		return CVSS{}, fmt.Errorf("baseScore %v out of range", score)
	}
	if d.Version != "" && d.Version != version {
		return CVSS{}, fmt.Errorf("version %.10q in a CVSS %s list", d.Version, version)
	}
	sev := strings.ToUpper(d.BaseSeverity)
	if sev == "" {
		sev = strings.ToUpper(m.BaseSeverity)
	}
	if sev == "" {
		sev = SeverityOf(version, score)
	}
	return CVSS{Version: version, Vector: d.VectorString, BaseScore: score, Severity: sev, Source: m.Source}, nil
}

// SeverityOf is the qualitative rating of a CVSS base score: NVD's v2
// ranges (LOW, MEDIUM, HIGH) for version "2.0", the v3.x/v4.0 ranges (NONE,
// LOW, MEDIUM, HIGH, CRITICAL) otherwise.
func SeverityOf(version string, score float64) string {
	if version == "2.0" {
		switch {
		case score >= 7:
			return "HIGH"
		case score >= 4:
			return "MEDIUM"
		}
		return "LOW"
	}
	switch {
	case score >= 9:
		return "CRITICAL"
	case score >= 7:
		return "HIGH"
	case score >= 4:
		return "MEDIUM"
	case score > 0:
		return "LOW"
	}
	return "NONE"
}
