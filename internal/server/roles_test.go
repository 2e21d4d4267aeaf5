package server

import (
	"regexp"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/store"
)

var pathParam = regexp.MustCompile(`\{[a-z]+\}`)

// TestRolesMatrix sends every route of the route table with no
// credentials and with a token of each role: 401 without credentials, 403
// below the route's role (audited for mutating routes), and never 401 or
// 403 at or above it.
func TestRolesMatrix(t *testing.T) { testRolesMatrix(t) }

func testRolesMatrix(t *testing.T) {
	e := newEnv(t)
	admin := e.login("admin", e.adminPW)
	tokens := map[string]string{}
	for _, role := range []string{store.RoleReadOnly, store.RoleAnalyst, store.RoleAdmin} {
		tokens[role] = e.newToken(admin, "tok-"+role, role)
	}
	// What each role may reach, written out rather than derived from the
	// table, so a wrong access level in the table fails here.
	want := map[string]access{
		"POST /api/v1/logout":              accessAny,
		"POST /api/v1/responses":           accessAnalyst,
		"POST /api/v1/responses/{id}/undo": accessAnalyst,
		"POST /api/v1/scans":               accessAnalyst,
		"POST /api/v1/compliance":          accessAnalyst,
		"POST /api/v1/profiles/mode":       accessAnalyst,
		"POST /api/v1/enroll-tokens":       accessAdmin,
		"GET /api/v1/audit":                accessAdmin,
		"GET /api/v1/tokens":               accessAdmin,
		"POST /api/v1/tokens":              accessAdmin,
		"DELETE /api/v1/tokens/{id}":       accessAdmin,
		"GET /api/v1/users":                accessAdmin,
		"POST /api/v1/users":               accessAdmin,
		"GET /healthz":                     accessPublic,
		"GET /api/v1/openapi.json":         accessPublic,
		"POST /api/v1/login":               accessPublic,
	}
	for _, rt := range e.srv.routes {
		key := rt.method + " " + rt.pattern
		need, ok := want[key]
		if !ok {
			need = accessAny
			if rt.method != "GET" {
				t.Errorf("%s: mutating route missing from this test's table", key)
				continue
			}
		}
		if need != rt.access {
			t.Errorf("%s: route table says %s, want %s", key, rt.access, need)
		}
		path := pathParam.ReplaceAllString(rt.pattern, "no-such-id")
		var body any
		if rt.method != "GET" && rt.method != "DELETE" {
			body = []byte(`{}`)
		}
		if need == accessPublic {
			continue
		}
		if st, b := e.client().raw(rt.method, path, body, nil); st != 401 {
			t.Errorf("%s without credentials: %d %s, want 401", key, st, b)
		}
		for role, tok := range tokens {
			st, b := e.tokenClient(tok).raw(rt.method, path, body, nil)
			allowed := roleRank(role) >= need
			switch {
			case allowed && (st == 401 || st == 403):
				t.Errorf("%s as %s: %d %s, want it allowed", key, role, st, b)
			case st >= 500:
				t.Errorf("%s as %s: %d %s (an empty body or unknown id must be a 4xx)", key, role, st, b)
			case !allowed && st != 403:
				t.Errorf("%s as %s: %d %s, want 403", key, role, st, b)
			case !allowed && rt.action != "" && !e.auditHas(rt.action, "token:tok-"+role, false):
				t.Errorf("%s as %s: refusal not audited", key, role)
			}
		}
	}
	// A session gets the same answer as a token of its role.
	if st := admin.do("GET", "/api/v1/audit", nil, nil); st != 200 {
		t.Errorf("admin session on GET /audit: %d", st)
	}
}
