package vulnmatch

import (
	"archive/zip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// fakeSource is an in-memory Source. It indexes advisories the way the
// vulndb contract says: by each affected entry's exact ecosystem and
// normalised name. It records the advisory lookups it is asked for.
type fakeSource struct {
	advs map[[2]string][]*vulndb.Advisory
	kev  map[string]*vulndb.KEV
	epss map[string]*vulndb.EPSS
	cvss map[string][]vulndb.CVSS

	mu      sync.Mutex
	lookups [][2]string
	// err, when set, is returned by Advisories.
	err error
}

var (
	_ Source = (*fakeSource)(nil)
	// The SQLite database is what Match is given in production.
	_ Source = (*vulndb.DB)(nil)
)

func newFakeSource(advs ...*vulndb.Advisory) *fakeSource {
	s := &fakeSource{
		advs: make(map[[2]string][]*vulndb.Advisory),
		kev:  make(map[string]*vulndb.KEV),
		epss: make(map[string]*vulndb.EPSS),
		cvss: make(map[string][]vulndb.CVSS),
	}
	s.add(advs...)
	return s
}

func (s *fakeSource) add(advs ...*vulndb.Advisory) {
	for _, a := range advs {
		seen := map[[2]string]bool{}
		for _, af := range a.Affected {
			k := [2]string{af.Package.Ecosystem, normalizeName(af.Package.Ecosystem, af.Package.Name)}
			if !seen[k] {
				seen[k] = true
				s.advs[k] = append(s.advs[k], a)
			}
		}
	}
}

func (s *fakeSource) Advisories(_ context.Context, ecosystem, name string) ([]*vulndb.Advisory, error) {
	s.mu.Lock()
	s.lookups = append(s.lookups, [2]string{ecosystem, name})
	s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.advs[[2]string{ecosystem, name}], nil
}

func (s *fakeSource) KEV(_ context.Context, cve string) (*vulndb.KEV, error) {
	return s.kev[cve], nil
}

func (s *fakeSource) EPSS(_ context.Context, cve string) (*vulndb.EPSS, error) {
	return s.epss[cve], nil
}

func (s *fakeSource) CVSS(_ context.Context, cve string) ([]vulndb.CVSS, error) {
	return s.cvss[cve], nil
}

// calls returns the recorded lookups, sorted.
func (s *fakeSource) calls() [][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.lookups)
	sort.Slice(out, func(i, j int) bool {
		return out[i][0]+"\x00"+out[i][1] < out[j][0]+"\x00"+out[j][1]
	})
	return out
}

// dataDir is the shared real data set (README.md there), next to the
// repository: ../../../shared/data from this package.
func dataDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		vigiltest.Unavailable(t, "needs the shared data set at %s: %v", dir, err)
	}
	return dir
}

var (
	zipMu    sync.Mutex
	zipCache = map[string][]*vulndb.Advisory{}
)

// loadZip returns the advisories of an OSV all.zip under dataDir, sorted
// by ID. Advisories are shared between tests and must not be modified.
func loadZip(t testing.TB, rel string) []*vulndb.Advisory {
	t.Helper()
	path := filepath.Join(dataDir(t), rel)
	zipMu.Lock()
	defer zipMu.Unlock()
	if advs, ok := zipCache[path]; ok {
		return advs
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		vigiltest.Unavailable(t, "needs %s: %v", path, err)
	}
	defer zr.Close()
	var advs []*vulndb.Advisory
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		a := new(vulndb.Advisory)
		if err := json.Unmarshal(b, a); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		advs = append(advs, a)
	}
	sort.Slice(advs, func(i, j int) bool { return advs[i].ID < advs[j].ID })
	zipCache[path] = advs
	return advs
}

// loadKEV reads the real CISA KEV catalog.
func loadKEV(t testing.TB) map[string]*vulndb.KEV {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir(t), "kev", "known_exploited_vulnerabilities.json"))
	if err != nil {
		vigiltest.Unavailable(t, "needs the KEV catalog: %v", err)
	}
	var cat struct {
		Vulnerabilities []struct {
			CVEID, VendorProject, Product, VulnerabilityName, DateAdded string
			ShortDescription, RequiredAction, DueDate                   string
			KnownRansomwareCampaignUse                                  string
		}
	}
	if err := json.Unmarshal(b, &cat); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*vulndb.KEV)
	for _, v := range cat.Vulnerabilities {
		out[v.CVEID] = &vulndb.KEV{
			CVE: v.CVEID, VendorProject: v.VendorProject, Product: v.Product, Name: v.VulnerabilityName,
			DateAdded: v.DateAdded, DueDate: v.DueDate, RequiredAction: v.RequiredAction,
			KnownRansomware: v.KnownRansomwareCampaignUse == "Known", ShortDescription: v.ShortDescription,
		}
	}
	return out
}

// nvdRecord is the part of an NVD CVE API 2.0 record the tests read.
type nvdRecord struct {
	ID      string `json:"id"`
	Metrics map[string][]struct {
		Source   string `json:"source"`
		Type     string `json:"type"`
		CVSSData struct {
			Version      string  `json:"version"`
			VectorString string  `json:"vectorString"`
			BaseScore    float64 `json:"baseScore"`
			BaseSeverity string  `json:"baseSeverity"`
		} `json:"cvssData"`
		BaseSeverity string `json:"baseSeverity"` // v2 keeps it here
	} `json:"metrics"`
}

// loadNVD reads the real NVD subset as vulndb.CVSS lists, primary metrics
// first, as the vulndb importer is expected to store them.
func loadNVD(t testing.TB) (map[string][]vulndb.CVSS, []nvdRecord) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir(t), "nvd", "nvdcve-2.0-subset.json"))
	if err != nil {
		vigiltest.Unavailable(t, "needs the NVD subset: %v", err)
	}
	var resp struct {
		Vulnerabilities []struct {
			CVE nvdRecord `json:"cve"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]vulndb.CVSS)
	var recs []nvdRecord
	for _, v := range resp.Vulnerabilities {
		recs = append(recs, v.CVE)
		for _, key := range []string{"cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"} {
			for _, m := range v.CVE.Metrics[key] {
				sev := m.CVSSData.BaseSeverity
				if sev == "" {
					sev = m.BaseSeverity
				}
				out[v.CVE.ID] = append(out[v.CVE.ID], vulndb.CVSS{
					Version: m.CVSSData.Version, Vector: m.CVSSData.VectorString,
					BaseScore: m.CVSSData.BaseScore, Severity: sev, Source: m.Source,
				})
			}
		}
	}
	return out, recs
}
