package rules

import (
	"os"
	"strings"
	"testing"
)

// TestDocsFieldTable: docs/rules.md names every field Vigil fills.
func TestDocsFieldTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name, spec := range fields {
		w := "`" + name + "`"
		if spec.arg == argKeyReq {
			w = "`" + name + "[x]`"
		}
		if !strings.Contains(doc, w) {
			t.Errorf("docs/rules.md does not list %s", w)
		}
	}
}
