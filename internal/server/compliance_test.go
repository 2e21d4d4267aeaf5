package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/store"
)

func TestComplianceUpload(t *testing.T) {
	e := newEnv(t)
	admin := e.login("admin", e.adminPW)
	analyst := e.tokenClient(e.newToken(admin, "ci-bench", store.RoleAnalyst))
	rep := compliance.Report{Benchmark: compliance.BenchDocker, Host: "node1", Time: time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC),
		Results: []compliance.Result{
			{ID: "5.4", Title: "Ensure privileged containers are not used", Status: compliance.Fail, Target: "web (abc)", Evidence: "Privileged=true"},
			{Benchmark: compliance.BenchDocker, ID: "2.1", Title: "icc", Status: compliance.Pass},
			{ID: "5.12", Title: "ro", Status: compliance.Error, Error: "inspect failed"},
		}}
	var up complianceUploaded
	if st := analyst.do("POST", "/api/v1/compliance", rep, &up); st != 201 {
		t.Fatalf("POST: %d", st)
	}
	if up.Stored != 3 || up.Summary.Fail != 1 || up.Summary.Pass != 1 || up.Summary.Error != 1 {
		t.Errorf("answer %+v", up)
	}
	select {
	case b := <-e.published:
		if len(b.Compliance) != 3 {
			t.Errorf("published %d compliance results, want 3", len(b.Compliance))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published")
	}
	st, body := admin.raw("GET", "/api/v1/compliance", nil, nil)
	if st != 200 {
		t.Fatalf("GET: %d %s", st, body)
	}
	checkSchema(t, "ComplianceList", body)
	var list struct {
		Results []store.ComplianceResult `json:"results"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]store.ComplianceResult{}
	for _, c := range list.Results {
		got[c.CheckID] = c
	}
	c, ok := got["5.4"]
	if len(list.Results) != 3 || !ok || c.Benchmark != compliance.BenchDocker || c.Status != compliance.Fail || c.AgentID != "" || !c.Time.Equal(rep.Time) || len(c.ID) != 36 {
		t.Fatalf("stored %+v", list.Results)
	}
	var res compliance.Result
	if err := json.Unmarshal(c.Data, &res); err != nil || res.Evidence != "Privileged=true" || res.Target != "web (abc)" || res.Key() != "cis-docker:5.4" {
		t.Errorf("data %s (%v)", c.Data, err)
	}
	if err := json.Unmarshal(got["2.1"].Data, &res); err != nil || res.Target != "node1" {
		t.Errorf("a result without a target gets the report's host: %s", got["2.1"].Data)
	}
	if !e.auditHas("upload-compliance", "token:ci-bench", true) {
		t.Error("upload not audited")
	}
}

func TestComplianceUploadRejects(t *testing.T) {
	e := newEnv(t)
	admin := e.login("admin", e.adminPW)
	for _, c := range []struct{ body, want string }{
		{`[]`, "not a benchmark report"},
		{`{"benchmark":"cis-docker","results":[]}`, "results: empty"},
		{`{"results":[{"id":"1","status":"pass"}]}`, "benchmark: 1 to 64 bytes"},
		{`{"benchmark":"cis-docker","results":[{"id":"1","status":"ok"}]}`, "results[0].status"},
		{`{"benchmark":"cis-docker","results":[{"status":"pass"}]}`, "results[0].id"},
		{`{"benchmark":"cis-docker","results":[{"id":5,"status":"pass"}]}`, "results.id"},
	} {
		st, b := admin.raw("POST", "/api/v1/compliance", []byte(c.body), nil)
		if st != 400 || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", c.body, st, b, c.want)
		}
	}
	if !e.auditHas("upload-compliance", "", false) {
		t.Error("refusal not audited")
	}
}

func FuzzComplianceUpload(f *testing.F) {
	f.Add([]byte(`{"benchmark":"cis-docker","host":"h","results":[{"id":"5.4","status":"fail"}]}`))
	f.Add([]byte(`{"benchmark":"x","results":[{"id":"","status":"pass"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ParseComplianceUpload(b)
		if err != nil {
			return
		}
		if rep.Benchmark == "" || len(rep.Results) == 0 {
			t.Fatalf("accepted %q", b)
		}
		for _, r := range rep.Results {
			if r.ID == "" || r.Benchmark == "" {
				t.Fatalf("accepted a result without id or benchmark: %q", b)
			}
		}
	})
}
