package frameworks

import (
	"strings"
	"testing"
)

func TestEmbeddedDataValid(t *testing.T) {
	c, err := loadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range Names {
		if len(c.Requirements(n)) == 0 {
			t.Errorf("%s: no requirements", n)
		}
	}
	// Every NIST control a mapping names that FedRAMP does not list must be
	// a deliberate gap: today none.
	fed := map[string]bool{}
	for _, id := range c.byName[FedRAMP].Baseline {
		fed[id] = true
	}
	for _, m := range c.Mappings {
		for _, id := range m.Refs[NIST] {
			if !fed[id] {
				t.Errorf("mapping %s: NIST %s is not in the FedRAMP Moderate baseline list", m.ID, id)
			}
		}
	}
	// Every finding type is mapped.
	for _, f := range FindingTypes {
		if len(c.Lookup(KeyFinding+f)) == 0 {
			t.Errorf("finding type %s: no mapping", f)
		}
	}
	// Every framework requirement has at least one mapping (no dead rows).
	for _, n := range Names {
		src := n
		if d := c.byName[n].DerivedFrom; d != "" {
			src = d
		}
		used := map[string]bool{}
		for _, m := range c.Mappings {
			for _, id := range m.Refs[src] {
				used[id] = true
			}
		}
		for _, r := range c.Requirements(n) {
			if !used[r.ID] {
				t.Errorf("%s %s: listed but nothing maps to it", n, r.ID)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	fw, _ := data.ReadFile("data/frameworks.yaml")
	mp, _ := data.ReadFile("data/mappings.yaml")
	cases := []struct{ name, fw, mp, want string }{
		{"unknown control", string(fw), strings.Replace(string(mp), `nist-800-53: [CM-6]`, `nist-800-53: [CM-66]`, 1), `nist-800-53 has no requirement "CM-66"`},
		{"unknown framework", string(fw), strings.Replace(string(mp), `nist-800-53: [CM-6]`, `nist-800-35: [CM-6]`, 1), `"nist-800-35" is not a framework`},
		{"fedramp direct", string(fw), strings.Replace(string(mp), `nist-800-53: [CM-6]`, "nist-800-53: [CM-6]\n    fedramp-moderate: [CM-6]", 1), "is not mapped directly"},
		{"duplicate id", string(fw), string(mp) + "\n  - id: debian-all\n    match: [\"finding:kev\"]\n    basis: judgement\n    note: x\n    hipaa: [\"164.312(b)\"]\n", "id used twice"},
		{"duplicate control", strings.Replace(string(fw), `- {id: AC-3, title: Access Enforcement}`, "- {id: AC-3, title: Access Enforcement}\n      - {id: AC-3, title: Again}", 1), string(mp), "control AC-3 listed twice"},
		{"bad basis", string(fw), strings.Replace(string(mp), "basis: judgement", "basis: guess", 1), `basis "guess"`},
		{"bad key", string(fw), strings.Replace(string(mp), `match: ["cis-debian-12:*"]`, `match: ["cis-debain-12:*"]`, 1), `unknown benchmark "cis-debain-12"`},
		{"bad finding", string(fw), strings.Replace(string(mp), `"finding:kev"`, `"finding:kevv"`, 1), "unknown finding type"},
		{"unknown field", string(fw), strings.Replace(string(mp), "basis: judgement", "basis: judgement\n    bases: [x]", 1), `"bases" is not a framework`},
		{"not yaml", "frameworks: [", string(mp), "frameworks.yaml"},
		{"fedramp not in parent", strings.Replace(string(fw), "derived_from: nist-800-53", "derived_from: nist-800-171", 1), string(mp), `derived_from "nist-800-171"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.fw), []byte(tc.mp))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	c := Default()
	got := c.RefsFor(NIST, "cis-docker:5.4")
	for _, want := range []string{"CM-6", "AC-6", "SC-39"} {
		if len(got[want]) == 0 {
			t.Errorf("cis-docker:5.4 → NIST %s missing (got %v)", want, sortedKeys(got))
		}
	}
	if len(c.RefsFor(NIST, "cis-docker-x:5.4")) != 0 {
		t.Error("a key of another benchmark matched")
	}
	fed := c.RefsFor(FedRAMP, "finding:fim-change")
	if len(fed["SI-7"]) == 0 || len(fed["SI-7(1)"]) == 0 {
		t.Errorf("fim-change → FedRAMP: got %v, want SI-7 and SI-7(1)", sortedKeys(fed))
	}
	pci := c.RefsFor(PCI, "finding:fim-change")
	if len(pci["11.5.2"]) == 0 {
		t.Errorf("fim-change → PCI: got %v, want 11.5.2", sortedKeys(pci))
	}
	if len(c.RefsFor(PCI, "rule:Terminal shell in container*")) != 0 {
		t.Error("a rule name is matched literally, * included")
	}
}
