package sbom

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// JSONSchema is the value of the "schema" field of Vigil JSON documents.
const JSONSchema = "vigil.inventory/v1"

// jsonDocument is a Report with a leading schema field.
type jsonDocument struct {
	Schema string `json:"schema"`
	inventory.Report
}

// EncodeJSON writes r as indented Vigil JSON: the report's own fields plus a
// top-level "schema": "vigil.inventory/v1". A nil package list is written as
// an empty array.
func EncodeJSON(w io.Writer, r *inventory.Report) error {
	if r == nil {
		return fmt.Errorf("encode json: %w", errNilReport)
	}
	doc := jsonDocument{Schema: JSONSchema, Report: *r}
	if doc.Packages == nil {
		doc.Packages = []inventory.Package{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}
