package sbom

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
	}{
		{"cyclonedx", FormatCycloneDX},
		{"cyclonedx-json", FormatCycloneDX},
		{"cdx", FormatCycloneDX},
		{"CycloneDX", FormatCycloneDX},
		{" cdx ", FormatCycloneDX},
		{"spdx", FormatSPDX},
		{"spdx-json", FormatSPDX},
		{"SPDX-JSON", FormatSPDX},
		{"json", FormatJSON},
		{"vigil-json", FormatJSON},
		{"table", FormatTable},
	} {
		got, err := ParseFormat(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}

	for _, in := range []string{"", "xml", "cyclonedx-xml", "spdx-tag-value", "jsonl"} {
		_, err := ParseFormat(in)
		if err == nil {
			t.Errorf("ParseFormat(%q) succeeded", in)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, `"`+in+`"`) {
			t.Errorf("ParseFormat(%q) error %q does not name the input", in, msg)
		}
		for _, f := range Formats() {
			if !strings.Contains(msg, string(f)) {
				t.Errorf("ParseFormat(%q) error %q does not list %s", in, msg, f)
			}
		}
	}
}

func TestFormatsRoundTrip(t *testing.T) {
	for _, f := range Formats() {
		if got, err := ParseFormat(f.String()); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
}

func TestEncodeDispatch(t *testing.T) {
	r := testReport()
	for _, tc := range []struct {
		f    Format
		want string
	}{
		{FormatCycloneDX, `"bomFormat": "CycloneDX"`},
		{FormatSPDX, `"spdxVersion": "SPDX-2.3"`},
		{FormatJSON, `"schema": "vigil.inventory/v1"`},
		{FormatTable, "NAME"},
	} {
		var buf bytes.Buffer
		if err := Encode(&buf, tc.f, r, testOptions()); err != nil {
			t.Errorf("Encode(%s): %v", tc.f, err)
			continue
		}
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("Encode(%s) output lacks %q", tc.f, tc.want)
		}
	}
	if err := Encode(io.Discard, Format("xml"), r, testOptions()); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("Encode(xml) error = %v, want an unknown format error", err)
	}
}
