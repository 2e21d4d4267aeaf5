package sbom

import (
	"fmt"
	"io"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// Format is an output format for an inventory.
type Format string

// The supported formats. Their values are the canonical names ParseFormat
// accepts.
const (
	FormatCycloneDX Format = "cyclonedx"
	FormatSPDX      Format = "spdx"
	FormatJSON      Format = "json"
	FormatTable     Format = "table"
)

// validFormatNames lists the accepted names in the order error messages
// show them.
const validFormatNames = "cyclonedx (cyclonedx-json, cdx), spdx (spdx-json), json (vigil-json), table"

// Formats returns the canonical format names.
func Formats() []Format {
	return []Format{FormatCycloneDX, FormatSPDX, FormatJSON, FormatTable}
}

// String returns the canonical name of f.
func (f Format) String() string { return string(f) }

// ParseFormat returns the format named s. Names are case-insensitive and may
// be surrounded by spaces.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "cyclonedx", "cyclonedx-json", "cdx":
		return FormatCycloneDX, nil
	case "spdx", "spdx-json":
		return FormatSPDX, nil
	case "json", "vigil-json":
		return FormatJSON, nil
	case "table":
		return FormatTable, nil
	}
	return "", fmt.Errorf("parse format: unknown format %q: valid formats are %s", s, validFormatNames)
}

// Encode writes r to w in format f.
func Encode(w io.Writer, f Format, r *inventory.Report, o Options) error {
	switch f {
	case FormatCycloneDX:
		return EncodeCycloneDX(w, r, o)
	case FormatSPDX:
		return EncodeSPDX(w, r, o)
	case FormatJSON:
		return EncodeJSON(w, r)
	case FormatTable:
		return WriteTable(w, r)
	default:
		return fmt.Errorf("encode: unknown format %q: valid formats are %s", string(f), validFormatNames)
	}
}
