package vulnmatch

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// Severity values of a Finding.
const (
	SeverityCritical = "CRITICAL"
	SeverityHigh     = "HIGH"
	SeverityMedium   = "MEDIUM"
	SeverityLow      = "LOW"
	SeverityUnknown  = "UNKNOWN"
)

// nvdPrimary is the source NVD gives its own ("Primary") assessments.
const nvdPrimary = "nvd@nist.gov"

// scorer computes and remembers CVSS scores by vector: findings of one
// advisory, or of advisories sharing a CVE, repeat vectors.
type scorer struct {
	log   *slog.Logger
	cache map[string]*vulndb.CVSS // nil: the vector did not parse
}

func newScorer(log *slog.Logger) *scorer {
	return &scorer{log: log, cache: make(map[string]*vulndb.CVSS)}
}

// score returns the scored vector, nil when it is not a valid CVSS vector.
func (s *scorer) score(vector, source string) *vulndb.CVSS {
	c, ok := s.cache[vector]
	if !ok {
		version, score, err := cvssScore(vector)
		if err != nil {
			s.log.Debug("ignoring CVSS vector", "vector", vector, "err", err)
		} else {
			c = &vulndb.CVSS{Version: version, Vector: vector, BaseScore: score, Severity: vulndb.SeverityOf(version, score)}
		}
		s.cache[vector] = c
	}
	if c == nil {
		return nil
	}
	out := *c
	out.Source = source
	return &out
}

// advisoryCVSS is the best CVSS the advisory itself gives, from its
// severity and that of the matched affected entries; nil when it has no
// usable vector.
func (s *scorer) advisoryCVSS(adv *vulndb.Advisory, entries []int) *vulndb.CVSS {
	var best *vulndb.CVSS
	consider := func(sev []vulndb.Severity) {
		for _, v := range sev {
			switch v.Type {
			case "CVSS_V2", "CVSS_V3", "CVSS_V4":
			default:
				continue
			}
			if c := s.score(strings.TrimSpace(v.Score), "osv"); c != nil && (best == nil || versionRank(c.Version) > versionRank(best.Version)) {
				best = c
			}
		}
	}
	consider(adv.Severity)
	for _, i := range entries {
		consider(adv.Affected[i].Severity)
	}
	return best
}

// nvdCVSS picks NVD's best metric: the highest CVSS version, the primary
// source (NVD's own) before the CNA's, else the order given. A missing
// score or severity is computed from the vector.
func (s *scorer) nvdCVSS(list []vulndb.CVSS) *vulndb.CVSS {
	best := -1
	for i := range list {
		if best < 0 {
			best = i
			continue
		}
		a, b := &list[i], &list[best]
		ra, rb := versionRank(a.Version), versionRank(b.Version)
		if ra > rb || ra == rb && a.Source == nvdPrimary && b.Source != nvdPrimary {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	c := list[best]
	if c.BaseScore == 0 && c.Vector != "" {
		if scored := s.score(c.Vector, c.Source); scored != nil {
			c.BaseScore = scored.BaseScore
			if c.Version == "" {
				c.Version = scored.Version
			}
		}
	}
	if c.Severity == "" && c.Vector != "" {
		c.Severity = vulndb.SeverityOf(c.Version, c.BaseScore)
	}
	return &c
}

// distroSeverity is the severity word a distro or database gives the
// advisory: Ubuntu's priority (a severity entry of type "Ubuntu"), or a
// "severity"/"urgency" in the matched entries' ecosystem_specific or
// database_specific, or in the advisory's database_specific (Debian
// urgency, GHSA severity).
func distroSeverity(adv *vulndb.Advisory, entries []int) string {
	for _, v := range adv.Severity {
		if v.Type == "Ubuntu" && v.Score != "" {
			return v.Score
		}
	}
	for _, i := range entries {
		a := &adv.Affected[i]
		for _, v := range a.Severity {
			if v.Type == "Ubuntu" && v.Score != "" {
				return v.Score
			}
		}
		if s := severityField(a.EcosystemSpecific); s != "" {
			return s
		}
		if s := severityField(a.DatabaseSpecific); s != "" {
			return s
		}
	}
	return severityField(adv.DatabaseSpecific)
}

func severityField(raw json.RawMessage) string {
	// Most records have no such key (Go's ecosystem_specific holds large
	// import lists): skip decoding them.
	if len(raw) == 0 || !(bytes.Contains(raw, []byte(`"severity"`)) || bytes.Contains(raw, []byte(`"urgency"`)) || bytes.Contains(raw, []byte(`"priority"`))) {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range []string{"severity", "urgency", "priority"} {
		var s string
		if json.Unmarshal(m[k], &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

// mapDistroSeverity maps a distro's word onto Finding.Severity; "" when it
// names no level ("not yet assigned", "untriaged").
func mapDistroSeverity(word string) string {
	switch strings.ToLower(strings.Trim(word, " *")) {
	case "critical":
		return SeverityCritical
	case "high", "important":
		return SeverityHigh
	case "medium", "moderate":
		return SeverityMedium
	case "low", "negligible", "unimportant":
		return SeverityLow
	}
	return ""
}

// findingSeverity is Finding.Severity: from the CVSS score, else from the
// distro's word, else UNKNOWN.
func findingSeverity(c *vulndb.CVSS, distro string) string {
	if c != nil && c.BaseScore > 0 {
		return vulndb.SeverityOf(c.Version, c.BaseScore)
	}
	if s := mapDistroSeverity(distro); s != "" {
		return s
	}
	return SeverityUnknown
}

// severityRank orders Finding.Severity values, most severe highest.
func severityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}
