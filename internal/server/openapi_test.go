package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

type openAPIDocument struct {
	OpenAPI string                                 `json:"openapi"`
	Paths   map[string]map[string]openAPIOperation `json:"paths"`
}

type openAPIOperation struct {
	OperationID string                     `json:"operationId"`
	Role        string                     `json:"x-vigil-role"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Security    *[]map[string][]string     `json:"security"`
}

// TestOpenAPICoversRoutes holds the embedded document to the route table:
// every route documented with its role, nothing documented that is not
// served, and every $ref resolvable.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc openAPIDocument
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	e := newEnv(t)
	served := map[string]route{}
	for _, rt := range e.srv.routes {
		served[strings.ToLower(rt.method)+" "+rt.pattern] = rt
	}
	documented := map[string]openAPIOperation{}
	ids := map[string]bool{}
	for path, ops := range doc.Paths {
		for m, op := range ops {
			documented[m+" "+path] = op
			if ids[op.OperationID] || op.OperationID == "" {
				t.Errorf("%s %s: operationId %q empty or repeated", m, path, op.OperationID)
			}
			ids[op.OperationID] = true
		}
	}
	for k, rt := range served {
		op, ok := documented[k]
		if !ok {
			t.Errorf("route %s is not in openapi.json", k)
			continue
		}
		if op.Role != rt.access.String() {
			t.Errorf("%s: x-vigil-role %q, the route needs %q", k, op.Role, rt.access)
		}
		if op.Security == nil || (rt.access == accessPublic) != (len(*op.Security) == 0) {
			t.Errorf("%s: security %v does not match access %s", k, op.Security, rt.access)
		}
		has2xx := false
		for code := range op.Responses {
			has2xx = has2xx || strings.HasPrefix(code, "2")
		}
		if !has2xx {
			t.Errorf("%s: no 2xx response documented", k)
		}
		if rt.access != accessPublic {
			if _, ok := op.Responses["401"]; !ok {
				t.Errorf("%s: 401 not documented", k)
			}
		}
		if rt.access > accessAny || rt.action != "" && rt.access > accessPublic {
			if _, ok := op.Responses["403"]; !ok {
				t.Errorf("%s: 403 not documented", k)
			}
		}
	}
	for k := range documented {
		if _, ok := served[k]; !ok {
			t.Errorf("openapi.json documents %s, which is not served", k)
		}
	}
	// Every $ref points at a schema that exists.
	var generic any
	json.Unmarshal(openAPIDoc, &generic)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				if _, err := lookupPointer(generic, r); err != nil {
					t.Errorf("$ref %s: %v", r, err)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(generic)

	// Served as embedded.
	st, body := e.client().raw("GET", "/api/v1/openapi.json", nil, nil)
	if st != 200 || !bytes.Equal(body, openAPIDoc) {
		t.Errorf("GET /api/v1/openapi.json: %d, %d bytes (want the embedded %d)", st, len(body), len(openAPIDoc))
	}
}

func lookupPointer(doc any, ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	cur := doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("no %s", part)
		}
	}
	return cur, nil
}

var (
	schemaOnce sync.Once
	schemaComp *jsonschema.Compiler
	schemaErr  error
	schemaMu   sync.Mutex
	schemas    = map[string]*jsonschema.Schema{}
)

// checkSchema validates body against the document's component schema
// name (JSON Schema 2020-12, as OpenAPI 3.1 uses), so the answers the
// tests see are the ones the document promises.
func checkSchema(t testing.TB, name string, body []byte) {
	t.Helper()
	if err := validateSchema(name, body); err != nil {
		t.Errorf("%v\n%s", err, body)
	}
}

func validateSchema(name string, body []byte) error {
	schemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDoc))
		if err != nil {
			schemaErr = err
			return
		}
		schemaComp = jsonschema.NewCompiler()
		schemaComp.DefaultDraft(jsonschema.Draft2020)
		schemaErr = schemaComp.AddResource("https://vigil.invalid/openapi.json", doc)
	})
	if schemaErr != nil {
		return fmt.Errorf("loading openapi.json as JSON Schema: %w", schemaErr)
	}
	schemaMu.Lock()
	sch, ok := schemas[name]
	if !ok {
		var err error
		sch, err = schemaComp.Compile("https://vigil.invalid/openapi.json#/components/schemas/" + name)
		if err != nil {
			schemaMu.Unlock()
			return fmt.Errorf("compiling schema %s: %w", name, err)
		}
		schemas[name] = sch
	}
	schemaMu.Unlock()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("answer is not JSON: %w", err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("answer does not match schema %s: %w", name, err)
	}
	return nil
}

// TestOpenAPISchemasDescribeAnswers validates real answers against the
// documented schemas, and checks the schemas are strict enough to fail.
func TestOpenAPISchemasDescribeAnswers(t *testing.T) {
	e := newEnv(t)
	admin := e.login("admin", e.adminPW)
	for _, c := range []struct{ path, schema string }{
		{"/api/v1/me", "Me"}, {"/api/v1/dashboard", "Dashboard"}, {"/api/v1/alerts", "AlertPage"},
		{"/api/v1/incidents", "IncidentPage"}, {"/api/v1/responses", "ResponseList"}, {"/api/v1/agents", "AgentList"},
		{"/api/v1/inventory", "AssetList"}, {"/api/v1/scans", "ScanList"}, {"/api/v1/profiles", "ProfileList"},
		{"/api/v1/compliance", "ComplianceList"}, {"/api/v1/audit", "AuditLog"}, {"/api/v1/tokens", "TokenList"},
		{"/api/v1/users", "UserList"}, {"/healthz", "Health"},
	} {
		st, body := admin.raw("GET", c.path, nil, nil)
		if st != 200 {
			t.Errorf("GET %s: %d %s", c.path, st, body)
			continue
		}
		checkSchema(t, c.schema, body)
	}
	st, body := admin.raw("GET", "/api/v1/alerts/nope", nil, nil)
	if st != 404 {
		t.Errorf("unknown alert: %d", st)
	}
	checkSchema(t, "Error", body)
	// The schemas can fail: a wrong type is caught.
	if validateSchema("AlertPage", []byte(`{"alerts": [{"id": 5}]}`)) == nil {
		t.Error("schema AlertPage accepted an alert with a numeric id")
	}
	if validateSchema("AlertPage", []byte(`{"next": "x"}`)) == nil {
		t.Error("schema AlertPage accepted a page without alerts")
	}
	keys := make([]string, 0, len(schemas))
	for k := range schemas {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("validated against %v", keys)
}
