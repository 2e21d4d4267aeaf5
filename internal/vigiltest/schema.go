package vigiltest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema URLs, as the official schemas' $id values give them.
const (
	CycloneDXSchema = "http://cyclonedx.org/schema/bom-1.6.schema.json"
	SPDXSchema      = "http://spdx.org/rdf/terms/2.3"
)

// schemaFiles maps schema URLs to the copies in internal/sbom/testdata/schema.
var schemaFiles = map[string]string{
	CycloneDXSchema: "bom-1.6.schema.json",
	"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
	"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schema.json",
	SPDXSchema: "spdx-schema-2.3.json",
}

func schemaDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "sbom", "testdata", "schema")
}

// localLoader serves the official schemas from the repository and refuses
// every other URL, so validation never touches the network.
type localLoader struct{}

func (localLoader) Load(url string) (any, error) {
	name, ok := schemaFiles[url]
	if !ok {
		return nil, fmt.Errorf("schema %s is not in internal/sbom/testdata/schema", url)
	}
	f, err := os.Open(filepath.Join(schemaDir(), name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// CompileSchema compiles the official schema with the given $id, with
// format assertions on.
func CompileSchema(t testing.TB, url string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(localLoader{})
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile schema %s: %v", url, err)
	}
	return s
}

// ParseJSON decodes b the way the validator wants it (numbers as json.Number).
func ParseJSON(t testing.TB, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode JSON: %v\n%.500s", err, b)
	}
	return v
}
