package sbom

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

func TestEncodeJSON(t *testing.T) {
	r := testReport()
	var buf bytes.Buffer
	if err := EncodeJSON(&buf, r); err != nil {
		t.Fatalf("EncodeJSON: %v", err)
	}
	out := buf.Bytes()
	if !bytes.HasPrefix(out, []byte("{\n  \"schema\": \"vigil.inventory/v1\",\n")) {
		t.Errorf("output does not start with an indented schema field:\n%.200s", out)
	}
	if !strings.Contains(buf.String(), "apt-get update && apt-get install") {
		t.Error("'&' was HTML-escaped")
	}

	var top map[string]json.RawMessage
	if err := json.Unmarshal(out, &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "target", "os", "image", "packages", "errors", "partial", "stats"} {
		if _, ok := top[k]; !ok {
			t.Errorf("no top-level %q field", k)
		}
	}

	// The rest is the report as is: it decodes back to the same value.
	var back inventory.Report
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestEncodeJSONEmptyPackages(t *testing.T) {
	r := &inventory.Report{Target: inventory.Target{Kind: "dir", Name: "/empty"}}
	var buf bytes.Buffer
	if err := EncodeJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"packages": []`) {
		t.Errorf("nil packages not written as []:\n%s", buf.String())
	}
	if r.Packages != nil {
		t.Error("EncodeJSON modified the report")
	}
}
