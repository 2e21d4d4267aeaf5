package vex

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

func TestApplyIgnores(t *testing.T) {
	tests := []struct {
		name    string
		ignore  Ignore
		finding vulnmatch.Finding
		// reason is the suppression reason; "" means the finding is kept.
		reason string
	}{
		{
			name:    "by advisory ID",
			ignore:  Ignore{ID: "PYSEC-2020-102", Source: ".vigilignore:3"},
			finding: saltAuthBypass(),
			reason:  "ignored by .vigilignore:3",
		},
		{
			name:    "by CVE, any case",
			ignore:  Ignore{ID: "cve-2020-11651", Source: ".vigilignore:3"},
			finding: saltAuthBypass(),
			reason:  "ignored by .vigilignore:3",
		},
		{
			name:    "by a non-CVE alias",
			ignore:  Ignore{ID: "GHSA-4v7x-pqxf-cx7m", Reason: "no HTTP/2 server", Source: ".vigilignore:7"},
			finding: continuationFlood(),
			reason:  "ignored by .vigilignore:7 (no HTTP/2 server)",
		},
		{
			name:    "other advisory",
			ignore:  Ignore{ID: "CVE-2020-11652"},
			finding: saltAuthBypass(),
		},
		{
			name:    "active: expires tomorrow",
			ignore:  Ignore{ID: "CVE-2020-11651", Reason: "accepted", Expires: date("2026-06-16"), Source: ".vigilignore:3"},
			finding: saltAuthBypass(),
			reason:  "ignored by .vigilignore:3 (accepted) until 2026-06-16",
		},
		{
			name:    "expired: today is the expiry date",
			ignore:  Ignore{ID: "CVE-2020-11651", Expires: date("2026-06-15")},
			finding: saltAuthBypass(),
		},
		{
			name:    "expired last year",
			ignore:  Ignore{ID: "CVE-2020-11651", Expires: date("2025-01-01")},
			finding: saltAuthBypass(),
		},
		{
			name:    "scoped to the package name",
			ignore:  Ignore{ID: "CVE-2024-0727", Package: "libssl3", Source: "f:1"},
			finding: opensslNullDeref(),
			reason:  "ignored by f:1",
		},
		{
			name:    "scoped to the source package it was matched under",
			ignore:  Ignore{ID: "CVE-2024-0727", Package: "openssl", Source: "f:1"},
			finding: opensslNullDeref(),
			reason:  "ignored by f:1",
		},
		{
			name:    "scoped to another package",
			ignore:  Ignore{ID: "CVE-2024-0727", Package: "libssl-dev"},
			finding: opensslNullDeref(),
		},
		{
			name:    "scoped to a purl prefix without version",
			ignore:  Ignore{ID: "CVE-2020-11651", Package: "pkg:pypi/salt", Source: "f:2"},
			finding: saltAuthBypass(),
			reason:  "ignored by f:2",
		},
		{
			name:    "purl prefix stops at a component boundary",
			ignore:  Ignore{ID: "CVE-2020-11651", Package: "pkg:pypi/sal"},
			finding: saltAuthBypass(),
		},
		{
			name:    "scoped to the full purl with qualifiers",
			ignore:  Ignore{ID: "CVE-2024-0727", Package: "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12", Source: "f:4"},
			finding: opensslNullDeref(),
			reason:  "ignored by f:4",
		},
		{
			name:    "scoped to a purl with another version",
			ignore:  Ignore{ID: "CVE-2024-0727", Package: "pkg:deb/debian/libssl3@3.0.13-1~deb12u1"},
			finding: opensslNullDeref(),
		},
		{
			name:    "scoped to the source package purl",
			ignore:  Ignore{ID: "CVE-2024-0727", Package: "pkg:deb/debian/openssl", Source: "f:5"},
			finding: opensslNullDeref(),
			reason:  "ignored by f:5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Filter{Ignores: []Ignore{tt.ignore}, Now: clock}
			kept, suppressed := f.Apply([]vulnmatch.Finding{tt.finding})
			checkDecision(t, kept, suppressed, tt.reason)
		})
	}
}

// checkDecision checks that the one finding given to Apply was kept
// (reason "") or suppressed with reason.
func checkDecision(t *testing.T, kept []vulnmatch.Finding, suppressed []Decision, reason string) {
	t.Helper()
	if reason == "" {
		if len(kept) != 1 || len(suppressed) != 0 {
			t.Fatalf("kept %v, suppressed %+v; want the finding kept", ids(kept), suppressed)
		}
		return
	}
	if len(kept) != 0 || len(suppressed) != 1 {
		t.Fatalf("kept %v, suppressed %d; want the finding suppressed", ids(kept), len(suppressed))
	}
	if !suppressed[0].Suppressed {
		t.Error("decision.Suppressed = false")
	}
	if got := suppressed[0].Reason; got != reason {
		t.Errorf("reason = %q, want %q", got, reason)
	}
}

func TestExpired(t *testing.T) {
	active := Ignore{ID: "CVE-2020-11651", Expires: date("2026-06-16"), Source: "f:1"}
	never := Ignore{ID: "CVE-2020-11652", Source: "f:2"}
	past := Ignore{ID: "CVE-2024-0727", Expires: date("2026-01-01"), Source: "f:3"}
	today := Ignore{ID: "CVE-2023-45288", Expires: date("2026-06-15"), Source: "f:4"}
	f := &Filter{Ignores: []Ignore{active, never, past, today}, Now: clock}
	if diff := cmp.Diff([]Ignore{past, today}, f.Expired()); diff != "" {
		t.Errorf("Expired() (-want +got):\n%s", diff)
	}
	if got := (*Filter)(nil).Expired(); got != nil {
		t.Errorf("nil filter: Expired() = %v, want nil", got)
	}
}

func TestApplyVEX(t *testing.T) {
	notAffected := func(vuln, product string) Statement {
		return Statement{Vulnerability: vuln, Products: []string{product}, Status: StatusNotAffected,
			Justification: "vulnerable_code_not_in_execute_path", Source: "vex.json"}
	}
	withStatus := func(st Statement, status string) Statement {
		st.Status, st.Justification = status, ""
		return st
	}
	at := func(st Statement, ts string) Statement {
		var err error
		if st.Timestamp, err = time.Parse(time.RFC3339, ts); err != nil {
			t.Fatal(err)
		}
		return st
	}
	const inExecPath = "not_affected per vex.json: vulnerable_code_not_in_execute_path"

	tests := []struct {
		name       string
		statements []Statement
		finding    vulnmatch.Finding
		reason     string
	}{
		{
			name:       "not_affected, product purl with version",
			statements: []Statement{notAffected("CVE-2020-11651", "pkg:pypi/salt@3000.1")},
			finding:    saltAuthBypass(),
			reason:     inExecPath,
		},
		{
			name:       "not_affected, product purl without version covers every version",
			statements: []Statement{notAffected("CVE-2020-11651", "pkg:pypi/salt")},
			finding:    saltAuthBypass(),
			reason:     inExecPath,
		},
		{
			name:       "product purl with another version",
			statements: []Statement{notAffected("CVE-2020-11651", "pkg:pypi/salt@3000.2")},
			finding:    saltAuthBypass(),
		},
		{
			name:       "qualifiers ignored: product without, package with",
			statements: []Statement{notAffected("CVE-2024-0727", "pkg:deb/debian/libssl3@3.0.11-1~deb12u2")},
			finding:    opensslNullDeref(),
			reason:     inExecPath,
		},
		{
			name:       "qualifiers ignored: different qualifiers and a subpath",
			statements: []Statement{notAffected("CVE-2024-0727", "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=arm64#usr/lib")},
			finding:    opensslNullDeref(),
			reason:     inExecPath,
		},
		{
			name:       "percent-encoded version",
			statements: []Statement{notAffected("CVE-2024-0727", "pkg:deb/debian/libssl3@3.0.11-1%7Edeb12u2")},
			finding:    opensslNullDeref(),
			reason:     inExecPath,
		},
		{
			name:       "source package purl covers the binary package",
			statements: []Statement{notAffected("CVE-2024-0727", "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=source")},
			finding:    opensslNullDeref(),
			reason:     inExecPath,
		},
		{
			name:       "another type with the same name",
			statements: []Statement{notAffected("CVE-2020-11651", "pkg:generic/salt@3000.1")},
			finding:    saltAuthBypass(),
		},
		{
			name:       "matched by the finding's advisory ID",
			statements: []Statement{notAffected("GO-2024-2687", "pkg:golang/stdlib@1.22.1")},
			finding:    continuationFlood(),
			reason:     inExecPath,
		},
		{
			name: "matched by a statement alias",
			statements: []Statement{{Vulnerability: "CVE-0000-0000", Aliases: []string{"GHSA-4v7x-pqxf-cx7m"},
				Products: []string{"pkg:golang/stdlib"}, Status: StatusNotAffected,
				ImpactStatement: "the binary serves no HTTP/2", Source: "vex.json"}},
			finding: continuationFlood(),
			reason:  "not_affected per vex.json: the binary serves no HTTP/2",
		},
		{
			name:       "fixed suppresses",
			statements: []Statement{withStatus(notAffected("CVE-2020-11651", "pkg:pypi/salt"), StatusFixed)},
			finding:    saltAuthBypass(),
			reason:     "fixed per vex.json",
		},
		{
			name:       "affected keeps",
			statements: []Statement{withStatus(notAffected("CVE-2020-11651", "pkg:pypi/salt"), StatusAffected)},
			finding:    saltAuthBypass(),
		},
		{
			name:       "under_investigation keeps",
			statements: []Statement{withStatus(notAffected("CVE-2020-11651", "pkg:pypi/salt"), StatusUnderInvestigation)},
			finding:    saltAuthBypass(),
		},
		{
			name: "a later statement overrides: affected after not_affected",
			statements: []Statement{
				notAffected("CVE-2020-11651", "pkg:pypi/salt"),
				withStatus(notAffected("CVE-2020-11651", "pkg:pypi/salt@3000.1"), StatusAffected),
			},
			finding: saltAuthBypass(),
		},
		{
			name: "a later statement overrides: not_affected after under_investigation",
			statements: []Statement{
				withStatus(notAffected("CVE-2020-11651", "pkg:pypi/salt"), StatusUnderInvestigation),
				notAffected("CVE-2020-11651", "pkg:pypi/salt"),
			},
			finding: saltAuthBypass(),
			reason:  inExecPath,
		},
		{
			name: "timestamps decide before order",
			statements: []Statement{
				at(withStatus(notAffected("CVE-2020-11651", "pkg:pypi/salt"), StatusAffected), "2026-03-01T00:00:00Z"),
				at(notAffected("CVE-2020-11651", "pkg:pypi/salt"), "2026-01-01T00:00:00Z"),
			},
			finding: saltAuthBypass(),
		},
		{
			name: "statements about other products do not override",
			statements: []Statement{
				notAffected("CVE-2020-11651", "pkg:pypi/salt"),
				withStatus(notAffected("CVE-2020-11651", "pkg:pypi/salt-ssh"), StatusAffected),
			},
			finding: saltAuthBypass(),
			reason:  inExecPath,
		},
		{
			name:       "non-purl product matches nothing",
			statements: []Statement{notAffected("CVE-2020-11651", "salt")},
			finding:    saltAuthBypass(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Filter{VEX: tt.statements, Now: clock}
			kept, suppressed := f.Apply([]vulnmatch.Finding{tt.finding})
			checkDecision(t, kept, suppressed, tt.reason)
		})
	}
}

func TestApplyFilters(t *testing.T) {
	withSeverity := func(f vulnmatch.Finding, s string) vulnmatch.Finding {
		f.Severity = s
		return f
	}
	tests := []struct {
		name    string
		filter  Filter
		finding vulnmatch.Finding
		reason  string
	}{
		{"severity: critical at high", Filter{MinSeverity: "HIGH"}, saltAuthBypass(), ""},
		{"severity: medium below high", Filter{MinSeverity: "high"}, saltTraversal(), "below --severity HIGH"},
		{"severity: high at high", Filter{MinSeverity: "HIGH"}, withSeverity(saltTraversal(), "HIGH"), ""},
		{"severity: low at medium", Filter{MinSeverity: "MEDIUM"}, withSeverity(saltTraversal(), "LOW"), "below --severity MEDIUM"},
		{"severity: unknown below low", Filter{MinSeverity: "LOW"}, continuationFlood(), "below --severity LOW"},
		{"severity: unknown minimum keeps unknown", Filter{MinSeverity: "UNKNOWN"}, continuationFlood(), ""},
		{"severity: no minimum", Filter{}, continuationFlood(), ""},
		{"unfixed dropped", Filter{IgnoreUnfixed: true}, opensslUnfixed(), "no fix (--ignore-unfixed)"},
		{"unfixed: empty version string is no fix", Filter{IgnoreUnfixed: true},
			func() vulnmatch.Finding { f := opensslUnfixed(); f.FixedVersions = []string{""}; return f }(),
			"no fix (--ignore-unfixed)"},
		{"fixed kept", Filter{IgnoreUnfixed: true}, opensslNullDeref(), ""},
		{"not in KEV dropped", Filter{OnlyKEV: true}, continuationFlood(), "not in KEV (--only-kev)"},
		{"in KEV kept", Filter{OnlyKEV: true}, saltAuthBypass(), ""},
		{"ignore wins over severity", Filter{MinSeverity: "CRITICAL", Ignores: []Ignore{{ID: "CVE-2020-11652", Source: "f:1"}}},
			saltTraversal(), "ignored by f:1"},
		{"VEX wins over KEV-only",
			Filter{OnlyKEV: true, VEX: []Statement{{Vulnerability: "CVE-2023-45288", Products: []string{"pkg:golang/stdlib"}, Status: StatusFixed, Source: "v.json"}}},
			continuationFlood(), "fixed per v.json"},
		{"severity before unfixed", Filter{MinSeverity: "HIGH", IgnoreUnfixed: true}, opensslUnfixed(), "below --severity HIGH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.filter.Now = clock
			kept, suppressed := tt.filter.Apply([]vulnmatch.Finding{tt.finding})
			checkDecision(t, kept, suppressed, tt.reason)
		})
	}
}

func TestApplyKeepsOrder(t *testing.T) {
	in := []vulnmatch.Finding{saltAuthBypass(), opensslUnfixed(), continuationFlood(), saltTraversal(), opensslNullDeref()}
	f := &Filter{IgnoreUnfixed: true, Ignores: []Ignore{{ID: "CVE-2020-11652"}}, Now: clock}
	kept, suppressed := f.Apply(in)
	if diff := cmp.Diff([]string{"PYSEC-2020-102", "GO-2024-2687", "DEBIAN-CVE-2024-0727-openssl"}, ids(kept)); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	var got []string
	for _, d := range suppressed {
		got = append(got, d.Finding.ID)
	}
	if diff := cmp.Diff([]string{"DEBIAN-CVE-2024-13176-openssl", "PYSEC-2020-103"}, got); diff != "" {
		t.Errorf("suppressed (-want +got):\n%s", diff)
	}

	kept, suppressed = (*Filter)(nil).Apply(in)
	if len(kept) != len(in) || suppressed != nil {
		t.Errorf("nil filter kept %d of %d, suppressed %d", len(kept), len(in), len(suppressed))
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]string{"critical": "CRITICAL", " High ": "HIGH", "MEDIUM": "MEDIUM", "low": "LOW", "unknown": "UNKNOWN"} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "severe", "hi", "CRITICAL,HIGH"} {
		if _, err := ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q) succeeded, want an error", in)
		}
	}
}

// BenchmarkApply filters 10,000 findings through 1,000 VEX statements and
// 100 ignore entries.
func BenchmarkApply(b *testing.B) {
	var fs []vulnmatch.Finding
	for i := range 10000 {
		f := continuationFlood()
		f.ID = fmt.Sprintf("GO-2024-%d", i)
		f.Aliases = []string{fmt.Sprintf("CVE-2024-%d", 10000+i)}
		f.CVE = f.Aliases[0]
		fs = append(fs, f)
	}
	f := &Filter{MinSeverity: "LOW", Now: clock}
	for i := range 1000 {
		f.VEX = append(f.VEX, Statement{Vulnerability: fmt.Sprintf("CVE-2024-%d", 10000+i*10),
			Products: []string{"pkg:golang/stdlib@1.22.1", "pkg:oci/app"}, Status: StatusNotAffected, Justification: "component_not_present"})
	}
	for i := range 100 {
		f.Ignores = append(f.Ignores, Ignore{ID: fmt.Sprintf("GO-2024-%d", i*7), Package: "pkg:golang/stdlib"})
	}
	b.ReportAllocs()
	for b.Loop() {
		f.Apply(fs)
	}
}
