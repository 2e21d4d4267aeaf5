package vulndb

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
)

// secdb is a parsed Alpine secdb file (v3.x/main.json, community.json).
type secdb struct {
	Release string // distroversion, "v3.11"
	Repo    string // reponame, "main"
	Advs    []*Advisory
}

// Source is the name the file's advisories are stored under.
func (s *secdb) Source() string {
	if s.Repo == "" {
		return "alpine-secdb:" + s.Release
	}
	return "alpine-secdb:" + s.Release + "/" + s.Repo
}

var (
	// secfixCVE finds a CVE in a secfixes item, also the misspelt
	// "CVE 2018-16859", "CVE_2019-2426" and "CVE-2017-8073.patch".
	secfixCVE = regexp.MustCompile(`(?i)\bCVE[-_ ]?(\d{4})-(\d{4,})`)
	// secfixOther is a non-CVE identifier: XSA-284, TALOS-2017-0488,
	// ZBX-11023, wnpa-sec-2017-18.
	secfixOther = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*-[0-9]+$`)
)

// secfixID splits a secfixes item into the advisory key (a CVE, else the
// first other identifier) and further identifiers given with it
// ("CVE-2016-9932 XSA-200"). ok is false when it names nothing usable.
func secfixID(s string) (key string, others []string, ok bool) {
	fields := strings.Fields(s)
	if m := secfixCVE.FindStringSubmatchIndex(s); m != nil {
		key = "CVE-" + s[m[2]:m[3]] + "-" + s[m[4]:m[5]]
		for _, f := range fields {
			if secfixOther.MatchString(f) && !secfixCVE.MatchString(f) {
				others = append(others, f)
			}
		}
		return key, others, true
	}
	for _, f := range fields {
		if !secfixOther.MatchString(f) {
			continue
		}
		if key == "" {
			key = f
		} else {
			others = append(others, f)
		}
	}
	return key, others, key != ""
}

// parseSecdb converts an Alpine secdb file into advisories, one per
// (CVE, file), ID "ALPINE-<CVE>", with an affected entry per package that
// fixes it (ECOSYSTEM range introduced "0", fixed <version>). A secfixes
// version "0" (never affected in this release) yields nothing; null
// packages, versions and items are skipped. A bad package entry is skipped
// and counted in rep.
func parseSecdb(data []byte, rep *SourceReport) (*secdb, error) {
	var top struct {
		DistroVersion string            `json:"distroversion"`
		RepoName      string            `json:"reponame"`
		Packages      []json.RawMessage `json:"packages"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not an Alpine secdb file: %w", err)
	}
	release := strings.TrimSpace(top.DistroVersion)
	if release == "" || strings.IndexFunc(release, unicode.IsSpace) >= 0 || strings.ContainsAny(release, ":/") {
		return nil, fmt.Errorf("not an Alpine secdb file: distroversion %.40q", top.DistroVersion)
	}
	repo := strings.TrimSpace(top.RepoName)
	if strings.IndexFunc(repo, unicode.IsSpace) >= 0 || strings.ContainsAny(repo, ":/") {
		return nil, fmt.Errorf("not an Alpine secdb file: reponame %.40q", top.RepoName)
	}
	out := &secdb{Release: release, Repo: repo}
	eco := "Alpine:" + release
	byKey := map[string]*Advisory{}
	rep.Entries = len(top.Packages)
	for i, raw := range top.Packages {
		var p struct {
			Pkg *struct {
				Name     string                     `json:"name"`
				Secfixes map[string]json.RawMessage `json:"secfixes"`
			} `json:"pkg"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			rep.skip("invalid package entry", "packages[%d]: %v", i, err)
			continue
		}
		if p.Pkg == nil || strings.TrimSpace(p.Pkg.Name) == "" {
			rep.skip("invalid package entry", "packages[%d]: no pkg.name", i)
			continue
		}
		name := strings.TrimSpace(p.Pkg.Name)
		versions := make([]string, 0, len(p.Pkg.Secfixes))
		for v := range p.Pkg.Secfixes {
			versions = append(versions, v)
		}
		sort.Strings(versions)
		for _, ver := range versions {
			var items []*string
			if err := json.Unmarshal(p.Pkg.Secfixes[ver], &items); err != nil {
				rep.skip("invalid secfixes entry", "%s %s: secfixes is not a list of strings: %v", name, ver, err)
				continue
			}
			ver = strings.TrimSpace(ver)
			if ver == "0" {
				if rep.Skipped == nil {
					rep.Skipped = map[string]int{}
				}
				rep.Skipped["not affected (secfixes version 0)"] += len(items)
				continue
			}
			if ver == "" {
				rep.skip("invalid secfixes entry", "%s: empty fixed version", name)
				continue
			}
			for _, it := range items {
				if it == nil {
					continue
				}
				key, others, ok := secfixID(*it)
				if !ok {
					rep.skip("unrecognised identifier", "%s %s: %.60q names no CVE or advisory", name, ver, *it)
					continue
				}
				a := byKey[key]
				if a == nil {
					a = newSecdbAdvisory(key, release, repo)
					byKey[key] = a
				}
				addSecfix(a, eco, name, ver, others)
			}
		}
	}
	for _, a := range byKey {
		out.Advs = append(out.Advs, a)
	}
	sort.Slice(out.Advs, func(i, j int) bool { return out.Advs[i].ID < out.Advs[j].ID })
	return out, nil
}

func newSecdbAdvisory(key, release, repo string) *Advisory {
	a := &Advisory{ID: "ALPINE-" + key}
	if strings.HasPrefix(key, "CVE-") {
		a.Aliases = []string{key}
	}
	ds, _ := json.Marshal(map[string]string{"source": "alpine-secdb", "distroversion": release, "reponame": repo})
	a.DatabaseSpecific = ds
	return a
}

// addSecfix records that package name is fixed in ver.
func addSecfix(a *Advisory, eco, name, ver string, aliases []string) {
	for _, al := range aliases {
		if !slices.Contains(a.Aliases, al) {
			a.Aliases = append(a.Aliases, al)
		}
	}
	r := Range{Type: "ECOSYSTEM", Events: []Event{{Introduced: "0"}, {Fixed: ver}}}
	for i := range a.Affected {
		af := &a.Affected[i]
		if af.Package.Name != name {
			continue
		}
		for _, old := range af.Ranges {
			if old.Events[1].Fixed == ver {
				return
			}
		}
		af.Ranges = append(af.Ranges, r)
		return
	}
	a.Affected = append(a.Affected, Affected{Package: Package{Ecosystem: eco, Name: name}, Ranges: []Range{r}})
	if a.Summary == "" {
		a.Summary = fmt.Sprintf("%s fixed in %s %s (Alpine %s)", strings.TrimPrefix(a.ID, "ALPINE-"), name, ver, strings.TrimPrefix(eco, "Alpine:"))
	}
}
