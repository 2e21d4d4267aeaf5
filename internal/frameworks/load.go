package frameworks

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Framework names accepted by Catalog.Framework and the CLI.
const (
	NIST     = "nist-800-53"
	FedRAMP  = "fedramp-moderate"
	PCI      = "pci-dss"
	HIPAA    = "hipaa"
	CISv8    = "cis-controls-v8"
	Judgment = "judgement" // Mapping.Basis: Vigil's own reading
	Official = "official"  // Mapping.Basis: an official crosswalk (Mapping.Source names it)
)

// Names lists the frameworks in the order reports and help show them.
var Names = []string{PCI, NIST, HIPAA, FedRAMP, CISv8}

// Control is one requirement of a framework.
type Control struct {
	ID    string `yaml:"id" json:"id"`
	Title string `yaml:"title" json:"title"`
}

// Framework is one framework's catalogue.
type Framework struct {
	ID     string `yaml:"id" json:"id"`
	Name   string `yaml:"name" json:"name"`
	Source string `yaml:"source" json:"source"`
	// DerivedFrom names the framework whose mappings this one follows
	// (FedRAMP follows NIST 800-53); Baseline lists its control IDs.
	DerivedFrom string    `yaml:"derived_from,omitempty" json:"derived_from,omitempty"`
	Baseline    []string  `yaml:"baseline,omitempty" json:"-"`
	Controls    []Control `yaml:"controls,omitempty" json:"-"`
}

// Mapping is one entry of mappings.yaml: the evidence keys it matches and
// the requirements of each framework they bear on.
type Mapping struct {
	ID     string              `yaml:"id" json:"id"`
	Match  []string            `yaml:"match" json:"match"`
	Basis  string              `yaml:"basis" json:"basis"`
	Source string              `yaml:"source,omitempty" json:"source,omitempty"`
	Note   string              `yaml:"note" json:"note"`
	Refs   map[string][]string `yaml:",inline" json:"refs"`
}

// Catalog is the whole mapping: frameworks and mapping entries, validated.
type Catalog struct {
	Frameworks []*Framework
	Mappings   []*Mapping
	byName     map[string]*Framework
	titles     map[string]map[string]string // framework → control ID → title
}

//go:embed data/*.yaml
var data embed.FS

// Default returns the embedded catalogue. It panics only if the embedded
// data is invalid, which the package tests rule out.
func Default() *Catalog {
	c, err := loadEmbedded()
	if err != nil {
		panic("frameworks: embedded data: " + err.Error())
	}
	return c
}

func loadEmbedded() (*Catalog, error) {
	fw, err := data.ReadFile("data/frameworks.yaml")
	if err != nil {
		return nil, err
	}
	mp, err := data.ReadFile("data/mappings.yaml")
	if err != nil {
		return nil, err
	}
	return Parse(fw, mp)
}

// Parse reads and validates a catalogue: frameworks.yaml and mappings.yaml
// contents. Errors name the file and the entry.
func Parse(frameworksYAML, mappingsYAML []byte) (*Catalog, error) {
	var fdoc struct {
		Frameworks []*Framework `yaml:"frameworks"`
	}
	if err := strictYAML(frameworksYAML, &fdoc); err != nil {
		return nil, fmt.Errorf("frameworks.yaml: %w", err)
	}
	var mdoc struct {
		Mappings []*Mapping `yaml:"mappings"`
	}
	if err := strictYAML(mappingsYAML, &mdoc); err != nil {
		return nil, fmt.Errorf("mappings.yaml: %w", err)
	}
	c := &Catalog{Frameworks: fdoc.Frameworks, Mappings: mdoc.Mappings,
		byName: map[string]*Framework{}, titles: map[string]map[string]string{}}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func strictYAML(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

func (c *Catalog) validate() error {
	var errs []error
	for i, f := range c.Frameworks {
		if f == nil || f.ID == "" {
			errs = append(errs, fmt.Errorf("frameworks.yaml: framework %d: no id", i))
			continue
		}
		if c.byName[f.ID] != nil {
			errs = append(errs, fmt.Errorf("frameworks.yaml: framework %s listed twice", f.ID))
		}
		c.byName[f.ID] = f
		t := map[string]string{}
		for _, ctl := range f.Controls {
			switch {
			case ctl.ID == "" || ctl.Title == "":
				errs = append(errs, fmt.Errorf("frameworks.yaml: %s: control %q: id and title are required", f.ID, ctl.ID))
			case t[ctl.ID] != "":
				errs = append(errs, fmt.Errorf("frameworks.yaml: %s: control %s listed twice", f.ID, ctl.ID))
			}
			t[ctl.ID] = ctl.Title
		}
		c.titles[f.ID] = t
	}
	for _, n := range Names {
		if c.byName[n] == nil {
			errs = append(errs, fmt.Errorf("frameworks.yaml: framework %s missing", n))
		}
	}
	for _, f := range c.Frameworks {
		if f == nil || f.DerivedFrom == "" {
			continue
		}
		parent := c.titles[f.DerivedFrom]
		if parent == nil {
			errs = append(errs, fmt.Errorf("frameworks.yaml: %s: derived_from %q is not a framework", f.ID, f.DerivedFrom))
			continue
		}
		if len(f.Controls) > 0 || len(f.Baseline) == 0 {
			errs = append(errs, fmt.Errorf("frameworks.yaml: %s: a derived framework has a baseline and no controls of its own", f.ID))
		}
		seen := map[string]bool{}
		t := map[string]string{}
		for _, id := range f.Baseline {
			if seen[id] {
				errs = append(errs, fmt.Errorf("frameworks.yaml: %s: baseline lists %s twice", f.ID, id))
			}
			seen[id] = true
			// The derived framework's requirements are the baseline
			// controls the parent catalogue titles (the ones Vigil maps).
			if title, ok := parent[id]; ok {
				t[id] = title
			}
		}
		c.titles[f.ID] = t
	}
	ids := map[string]bool{}
	for i, m := range c.Mappings {
		if m == nil || m.ID == "" {
			errs = append(errs, fmt.Errorf("mappings.yaml: entry %d: no id", i))
			continue
		}
		where := "mappings.yaml: " + m.ID
		if ids[m.ID] {
			errs = append(errs, fmt.Errorf("%s: id used twice", where))
		}
		ids[m.ID] = true
		if m.Basis != Judgment && m.Basis != Official {
			errs = append(errs, fmt.Errorf("%s: basis %q: want %s or %s", where, m.Basis, Judgment, Official))
		}
		if m.Basis == Official && m.Source == "" {
			errs = append(errs, fmt.Errorf("%s: an official mapping names its source", where))
		}
		if m.Note == "" {
			errs = append(errs, fmt.Errorf("%s: note (why) is required", where))
		}
		if len(m.Match) == 0 {
			errs = append(errs, fmt.Errorf("%s: match is empty", where))
		}
		keys := map[string]bool{}
		for _, k := range m.Match {
			if err := checkKey(k); err != nil {
				errs = append(errs, fmt.Errorf("%s: match %q: %w", where, k, err))
			}
			if keys[k] {
				errs = append(errs, fmt.Errorf("%s: match %q listed twice", where, k))
			}
			keys[k] = true
		}
		if len(m.Refs) == 0 {
			errs = append(errs, fmt.Errorf("%s: maps to no framework", where))
		}
		for fw, refs := range m.Refs {
			f := c.byName[fw]
			switch {
			case f == nil:
				errs = append(errs, fmt.Errorf("%s: %q is not a framework", where, fw))
				continue
			case f.DerivedFrom != "":
				errs = append(errs, fmt.Errorf("%s: %s follows %s and is not mapped directly", where, fw, f.DerivedFrom))
				continue
			}
			seen := map[string]bool{}
			for _, id := range refs {
				if _, ok := c.titles[fw][id]; !ok {
					errs = append(errs, fmt.Errorf("%s: %s has no requirement %q", where, fw, id))
				}
				if seen[id] {
					errs = append(errs, fmt.Errorf("%s: %s %s listed twice", where, fw, id))
				}
				seen[id] = true
			}
		}
	}
	return errors.Join(errs...)
}

// Key prefixes of mapping matches.
const (
	KeyRule    = "rule:"
	KeyTactic  = "tactic:"
	KeyFinding = "finding:"
)

// Finding types (keys "finding:<type>").
const (
	FindingVulnerability     = "vulnerability"
	FindingKEV               = "kev"
	FindingSecret            = "secret"
	FindingMisconfiguration  = "misconfiguration"
	FindingFIMChange         = "fim-change"
	FindingContainerDrift    = "container-drift"
	FindingResponseAction    = "response-action"
	FindingAuditLog          = "audit-log"
	FindingRuntimeMonitoring = "runtime-monitoring"
)

// FindingTypes are every finding type the mapping must cover.
var FindingTypes = []string{FindingVulnerability, FindingKEV, FindingSecret, FindingMisconfiguration,
	FindingFIMChange, FindingContainerDrift, FindingResponseAction, FindingAuditLog, FindingRuntimeMonitoring}

// Benchmarks a check key may name (compliance.Bench*).
var benchmarks = []string{"cis-debian-12", "cis-docker", "cis-kubernetes"}

func checkKey(k string) error {
	switch {
	case strings.HasPrefix(k, KeyRule):
		if strings.TrimSpace(k[len(KeyRule):]) == "" {
			return errors.New("no rule name")
		}
		return nil
	case strings.HasPrefix(k, KeyTactic):
		t := k[len(KeyTactic):]
		if len(t) != 6 || !strings.HasPrefix(t, "TA") {
			return errors.New("want tactic:TA####")
		}
		return nil
	case strings.HasPrefix(k, KeyFinding):
		for _, f := range FindingTypes {
			if k[len(KeyFinding):] == f {
				return nil
			}
		}
		return fmt.Errorf("unknown finding type (want one of %s)", strings.Join(FindingTypes, ", "))
	}
	bench, id, ok := strings.Cut(k, ":")
	if !ok {
		return errors.New("want <benchmark>:<id>, rule:, tactic: or finding:")
	}
	known := false
	for _, b := range benchmarks {
		known = known || b == bench
	}
	if !known {
		return fmt.Errorf("unknown benchmark %q (want one of %s)", bench, strings.Join(benchmarks, ", "))
	}
	if id == "" || strings.Contains(strings.TrimSuffix(id, "*"), "*") {
		return errors.New("check id: a * only at the end")
	}
	return nil
}

// matches says whether mapping key k covers evidence key key.
func matches(k, key string) bool {
	if p, ok := strings.CutSuffix(k, "*"); ok && !strings.HasPrefix(k, KeyRule) {
		return strings.HasPrefix(key, p)
	}
	return k == key
}

// Framework returns the named framework.
func (c *Catalog) Framework(name string) (*Framework, error) {
	f := c.byName[name]
	if f == nil {
		return nil, fmt.Errorf("unknown framework %q (want one of %s)", name, strings.Join(Names, ", "))
	}
	return f, nil
}

// Requirements lists a framework's requirements in catalogue order.
func (c *Catalog) Requirements(name string) []Control {
	f := c.byName[name]
	if f == nil {
		return nil
	}
	if f.DerivedFrom == "" {
		return append([]Control(nil), f.Controls...)
	}
	var out []Control
	for _, ctl := range c.byName[f.DerivedFrom].Controls {
		if t, ok := c.titles[name][ctl.ID]; ok {
			out = append(out, Control{ID: ctl.ID, Title: t})
		}
	}
	return out
}

// Lookup returns the mapping entries covering an evidence key ("cis-docker:5.4",
// "rule:Terminal shell in container", "tactic:TA0002", "finding:kev").
func (c *Catalog) Lookup(key string) []*Mapping {
	var out []*Mapping
	for _, m := range c.Mappings {
		for _, k := range m.Match {
			if matches(k, key) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// RefsFor returns the requirement IDs of framework fw that key bears on,
// sorted, with the mapping entries responsible. Derived frameworks go
// through their parent and keep only baseline controls.
func (c *Catalog) RefsFor(fw, key string) map[string][]*Mapping {
	f := c.byName[fw]
	if f == nil {
		return nil
	}
	src := fw
	if f.DerivedFrom != "" {
		src = f.DerivedFrom
	}
	out := map[string][]*Mapping{}
	for _, m := range c.Lookup(key) {
		for _, id := range m.Refs[src] {
			if _, ok := c.titles[fw][id]; ok {
				out[id] = append(out[id], m)
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
