package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// cveRe matches a CVE ID as the tables store it.
var cveRe = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// kevCatalog is a parsed CISA KEV catalog.
type kevCatalog struct {
	Version  string
	Released time.Time
	Entries  []KEV
}

// kevEntry is one vulnerability in the upstream KEV JSON.
type kevEntry struct {
	CveID                      string `json:"cveID"`
	VendorProject              string `json:"vendorProject"`
	Product                    string `json:"product"`
	VulnerabilityName          string `json:"vulnerabilityName"`
	DateAdded                  string `json:"dateAdded"`
	ShortDescription           string `json:"shortDescription"`
	RequiredAction             string `json:"requiredAction"`
	DueDate                    string `json:"dueDate"`
	KnownRansomwareCampaignUse string `json:"knownRansomwareCampaignUse"`
}

// parseKEV parses the CISA KEV catalog JSON. A file of another shape is an
// error; a bad entry is skipped and counted in rep.
func parseKEV(data []byte, rep *SourceReport) (*kevCatalog, error) {
	var top struct {
		CatalogVersion  string            `json:"catalogVersion"`
		DateReleased    string            `json:"dateReleased"`
		Count           *int              `json:"count"`
		Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a KEV catalog: %w", err)
	}
	if top.Vulnerabilities == nil {
		return nil, errors.New("not a KEV catalog: no vulnerabilities array")
	}
	cat := &kevCatalog{Version: top.CatalogVersion}
	if top.DateReleased != "" {
		t, err := time.Parse(time.RFC3339Nano, top.DateReleased)
		if err != nil {
			rep.warnf("dateReleased %q: %v", top.DateReleased, err)
		}
		cat.Released = t
	}
	rep.Entries = len(top.Vulnerabilities)
	if top.Count != nil && *top.Count != len(top.Vulnerabilities) {
		rep.warnf("catalog count is %d but it lists %d vulnerabilities", *top.Count, len(top.Vulnerabilities))
	}
	seen := map[string]int{}
	for i, raw := range top.Vulnerabilities {
		var e kevEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			rep.skip("invalid entry", "vulnerabilities[%d]: %v", i, err)
			continue
		}
		cve := normCVE(e.CveID)
		if !cveRe.MatchString(cve) {
			rep.skip("invalid cveID", "vulnerabilities[%d]: cveID %.40q is not a CVE ID", i, e.CveID)
			continue
		}
		if _, err := time.Parse(time.DateOnly, e.DateAdded); err != nil {
			rep.warnf("vulnerabilities[%d] (%s): dateAdded %.20q is not YYYY-MM-DD", i, cve, e.DateAdded)
		}
		k := KEV{
			CVE:              cve,
			VendorProject:    e.VendorProject,
			Product:          e.Product,
			Name:             e.VulnerabilityName,
			DateAdded:        e.DateAdded,
			DueDate:          e.DueDate,
			RequiredAction:   e.RequiredAction,
			KnownRansomware:  strings.EqualFold(strings.TrimSpace(e.KnownRansomwareCampaignUse), "Known"),
			ShortDescription: e.ShortDescription,
		}
		if j, dup := seen[cve]; dup {
			rep.skip("duplicate cveID", "vulnerabilities[%d]: %s is listed again; the later entry is kept", i, cve)
			cat.Entries[j] = k
			continue
		}
		seen[cve] = len(cat.Entries)
		cat.Entries = append(cat.Entries, k)
	}
	if len(cat.Entries) == 0 {
		return nil, fmt.Errorf("no valid KEV entry in %d%s", len(top.Vulnerabilities), rep.firstWarning())
	}
	return cat, nil
}
