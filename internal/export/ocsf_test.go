package export

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/store"
)

// The OCSF 1.1 requirements these classes carry, from the schema's
// events/*.json and objects/*.json ("requirement": "required", and the
// "at_least_one" constraints). Only what Vigil writes is listed.
var (
	// base_event
	ocsfBaseRequired  = []string{"activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time", "type_uid"}
	ocsfClassRequired = map[int][]string{
		ClassDetectionFinding:     {"finding_info"},                    // finding
		ClassVulnerabilityFinding: {"finding_info", "vulnerabilities"}, // finding + vulnerability_finding
		ClassComplianceFinding:    {"finding_info", "compliance"},      // finding + compliance_finding
		ClassProcessActivity:      {"actor", "device", "process"},      // system + process_activity
		ClassFileActivity:         {"actor", "device", "file"},         // system + file_activity
		ClassNetworkActivity:      {},                                  // network: at_least_one src/dst_endpoint
	}
	ocsfObjectRequired = map[string][]string{
		"metadata":        {"product", "version"},
		"product":         {"name", "vendor_name"}, // 1.1: vendor_name required; name we always give
		"finding_info":    {"uid", "title"},
		"device":          {"type_id"},
		"file":            {"name", "type_id"},
		"compliance":      {"standards"},
		"connection_info": {"direction_id"},
		"remediation":     {"desc"},
		"package":         {"name", "version"},
	}
	// The top-level attributes each class may carry: base_event's, the
	// Host, Container and Security Control profiles', the class's own.
	ocsfBaseAttrs = []string{"activity_id", "activity_name", "category_name", "category_uid", "class_name", "class_uid",
		"count", "duration", "end_time", "message", "metadata", "observables", "raw_data", "severity", "severity_id",
		"start_time", "status", "status_code", "status_detail", "status_id", "time", "timezone_offset", "type_name",
		"type_uid", "unmapped", "enrichments",
		"device", "actor", // host profile
		"container", "namespace_pid", // container profile
		"attacks", "disposition", "disposition_id", "action", "action_id", "malware"} // security_control profile
	ocsfClassAttrs = map[int][]string{
		ClassDetectionFinding:     {"finding_info", "resources", "evidences", "confidence", "confidence_id", "confidence_score", "impact", "impact_id", "impact_score", "remediation", "risk_level", "risk_level_id", "risk_score", "vulnerabilities"},
		ClassVulnerabilityFinding: {"finding_info", "vulnerabilities", "resource", "confidence", "confidence_id", "confidence_score"},
		ClassComplianceFinding:    {"finding_info", "compliance", "remediation", "resource", "resources"},
		ClassProcessActivity:      {"process", "exit_code", "injection_type", "injection_type_id", "module", "actual_permissions", "requested_permissions"},
		ClassFileActivity:         {"file", "file_result", "access_mask", "component", "connection_uid", "create_mask"},
		ClassNetworkActivity:      {"src_endpoint", "dst_endpoint", "connection_info", "traffic", "proxy", "tls", "app_name"},
	}
	ocsfClassActivities = map[int][]int{
		ClassDetectionFinding:     {1, 2, 3, 99},
		ClassVulnerabilityFinding: {1, 2, 3, 99},
		ClassComplianceFinding:    {1, 2, 3, 99},
		ClassProcessActivity:      {1, 2, 3, 4, 5, 99},
		ClassFileActivity:         {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 99},
		ClassNetworkActivity:      {1, 2, 3, 4, 5, 6, 99},
	}
)

// checkOCSF validates a decoded OCSF event against the tables above and
// returns what is wrong.
func checkOCSF(m map[string]any) []string {
	var errs []string
	bad := func(f string, args ...any) { errs = append(errs, fmt.Sprintf(f, args...)) }
	num := func(o map[string]any, k string) (int, bool) {
		f, ok := o[k].(float64)
		if !ok || f != float64(int(f)) {
			return 0, false
		}
		return int(f), true
	}
	for _, k := range ocsfBaseRequired {
		if _, ok := m[k]; !ok {
			bad("missing %s", k)
		}
	}
	class, ok1 := num(m, "class_uid")
	act, ok2 := num(m, "activity_id")
	typ, ok3 := num(m, "type_uid")
	cat, ok4 := num(m, "category_uid")
	sev, ok5 := num(m, "severity_id")
	if _, ok := num(m, "time"); !ok {
		bad("time is not an integer (ms)")
	}
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		bad("class_uid, activity_id, type_uid, category_uid, severity_id must be integers")
		return errs
	}
	if typ != class*100+act {
		bad("type_uid %d != class_uid*100+activity_id", typ)
	}
	if cat != class/1000 {
		bad("category_uid %d for class %d", cat, class)
	}
	if !(sev >= 0 && sev <= 6 || sev == 99) {
		bad("severity_id %d", sev)
	}
	req, known := ocsfClassRequired[class]
	if !known {
		bad("class %d not one Vigil writes", class)
		return errs
	}
	if !slices.Contains(ocsfClassActivities[class], act) {
		bad("activity_id %d not defined for class %d", act, class)
	}
	for _, k := range req {
		if _, ok := m[k]; !ok {
			bad("class %d: missing %s", class, k)
		}
	}
	for k := range m {
		if !slices.Contains(ocsfBaseAttrs, k) && !slices.Contains(ocsfClassAttrs[class], k) {
			bad("class %d: attribute %s is not in OCSF 1.1", class, k)
		}
	}
	if class == ClassNetworkActivity && m["src_endpoint"] == nil && m["dst_endpoint"] == nil {
		bad("network activity without src_endpoint or dst_endpoint")
	}
	md, _ := m["metadata"].(map[string]any)
	if md["version"] != "1.1.0" {
		bad("metadata.version %v", md["version"])
	}
	// Objects, wherever they appear.
	var walk func(name string, v any)
	walk = func(name string, v any) {
		switch x := v.(type) {
		case map[string]any:
			objName := name
			if name == "file_result" || name == "parent_folder" {
				objName = "file"
			}
			for _, k := range ocsfObjectRequired[objName] {
				if _, ok := x[k]; !ok {
					bad("%s: missing %s", name, k)
				}
			}
			switch name {
			case "attacks":
				if x["tactic"] == nil && x["technique"] == nil {
					bad("attack without tactic or technique")
				}
			case "vulnerabilities":
				if x["cve"] == nil && x["cwe"] == nil {
					bad("vulnerability without cve or cwe")
				}
			case "cve":
				if x["uid"] == nil {
					bad("cve without uid")
				}
			}
			for k, sub := range x {
				walk(k, sub)
			}
		case []any:
			for _, e := range x {
				walk(name, e)
			}
		}
	}
	for k, v := range m {
		if k == "unmapped" {
			continue
		}
		walk(k, v)
	}
	return errs
}

func decodeOCSF(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOCSFFindingsMeetTheSchema(t *testing.T) {
	items := testItems(t)
	wantClass := []float64{2004, 2004, 2002, 2002, 2003}
	for i, it := range items {
		m := decodeOCSF(t, OCSF(it))
		if errs := checkOCSF(m); len(errs) > 0 {
			t.Errorf("%s item: %s\n%v", it.Kind, strings.Join(errs, "; "), m)
		}
		if m["class_uid"] != wantClass[i] {
			t.Errorf("%s item: class %v, want %v", it.Kind, m["class_uid"], wantClass[i])
		}
	}
	a := decodeOCSF(t, OCSF(items[0]))
	if a["type_uid"] != 200401.0 || a["severity_id"] != 5.0 || a["time"] != float64(t0.UnixMilli()) {
		t.Errorf("detection finding type %v severity %v time %v", a["type_uid"], a["severity_id"], a["time"])
	}
	fi := a["finding_info"].(map[string]any)
	atk := fi["attacks"].([]any)[0].(map[string]any)
	if fi["uid"] != "01J-alert-1" || atk["technique"].(map[string]any)["uid"] != "T1059.004" || atk["tactic"].(map[string]any)["uid"] != "TA0002" {
		t.Errorf("finding_info %v", fi)
	}
	proc := a["actor"].(map[string]any)["process"].(map[string]any)
	if proc["pid"] != 4242.0 || proc["parent_process"].(map[string]any)["pid"] != 4200.0 || proc["file"].(map[string]any)["path"] != "/bin/sh" {
		t.Errorf("actor.process %v", proc)
	}
	if lin := proc["lineage"].([]any); len(lin) != 2 || lin[0] != "/usr/bin/node" {
		t.Errorf("lineage %v", lin)
	}
	if c := a["container"].(map[string]any); c["uid"] != "c0ffee1234567890" || c["image"].(map[string]any)["name"] != "nginx:1.25" {
		t.Errorf("container %v", c)
	}
	v := decodeOCSF(t, OCSF(items[2]))
	vu := v["vulnerabilities"].([]any)[0].(map[string]any)
	if vu["cve"].(map[string]any)["uid"] != "CVE-2024-1234" || v["severity_id"] != 5.0 || v["type_uid"] != 200201.0 {
		t.Errorf("vulnerability finding %v", v)
	}
	c := decodeOCSF(t, OCSF(items[4]))
	if comp := c["compliance"].(map[string]any); comp["status_id"] != 3.0 || comp["control"] != "5.4" {
		t.Errorf("compliance %v", comp)
	}
}

func TestOCSFEventActivities(t *testing.T) {
	base := testEvent()
	for _, tc := range []struct {
		kind      event.Kind
		class     float64
		activity  float64
		mutate    func(e *event.Event)
		checkAttr string
	}{
		{event.ProcessExec, 1007, 1, func(e *event.Event) { e.Net = nil }, "process"},
		{event.ProcessExit, 1007, 2, func(e *event.Event) { e.Net = nil; e.Exit = &event.Exit{Code: 1} }, "exit_code"},
		{event.FileOpen, 1001, 14, func(e *event.Event) { e.Net = nil; e.File = &event.File{Path: "/etc/shadow"} }, "file"},
		{event.FileRename, 1001, 5, func(e *event.Event) { e.Net = nil; e.File = &event.File{Path: "/a", NewPath: "/b"} }, "file_result"},
		{event.FileMkdir, 1001, 1, func(e *event.Event) { e.Net = nil; e.File = &event.File{Path: "/tmp/d"} }, "file"},
		{event.NetConnect, 4001, 1, nil, "connection_info"},
		{event.NetConnect, 4001, 4, func(e *event.Event) { e.Ret = -111 }, "dst_endpoint"},
		{event.NetAccept, 4001, 1, nil, "src_endpoint"},
		{event.NetListen, 4001, 99, func(e *event.Event) { e.Net = &event.Net{Family: "unix", UnixPath: "/run/x.sock"} }, "src_endpoint"},
	} {
		e := *base
		e.Type = tc.kind
		if tc.mutate != nil {
			tc.mutate(&e)
		}
		m := decodeOCSF(t, OCSFEvent(&e, "agent-1"))
		if errs := checkOCSF(m); len(errs) > 0 {
			t.Errorf("%s: %s\n%v", tc.kind, strings.Join(errs, "; "), m)
		}
		if m["class_uid"] != tc.class || m["activity_id"] != tc.activity || m[tc.checkAttr] == nil {
			t.Errorf("%s: class %v activity %v %s=%v; want %v %v", tc.kind, m["class_uid"], m["activity_id"], tc.checkAttr, m[tc.checkAttr], tc.class, tc.activity)
		}
	}
	// A launch's actor is the launcher.
	e := *base
	e.Type, e.Net = event.ProcessExec, nil
	m := decodeOCSF(t, OCSFEvent(&e, "a"))
	if pid := m["actor"].(map[string]any)["process"].(map[string]any)["pid"]; pid != 4200.0 {
		t.Errorf("launch actor pid %v, want the parent 4200", pid)
	}
	e.Type = event.BPF
	if OCSFEvent(&e, "a") != nil {
		t.Error("bpf event mapped to a class")
	}
}

// The checker itself catches what it should.
func TestCheckOCSFCatches(t *testing.T) {
	m := decodeOCSF(t, OCSF(testItems(t)[0]))
	m["type_uid"] = 200402.0
	delete(m["finding_info"].(map[string]any), "uid")
	m["made_up"] = 1
	errs := strings.Join(checkOCSF(m), "; ")
	for _, want := range []string{"type_uid", "finding_info: missing uid", "made_up"} {
		if !strings.Contains(errs, want) {
			t.Errorf("checker missed %q: %s", want, errs)
		}
	}
}

func TestOCSFFileSinkRotates(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "ocsf.jsonl")
	one, _ := json.Marshal(OCSF(AlertItem(testAlert(t, "a0"))))
	// Room for two alert lines per file.
	m := runSink(t, SinkConfig{Type: TypeOCSFFile, Path: p, MaxSize: int64(2*len(one) + 10), MaxFiles: 2, Batch: 3})
	for i := range 7 {
		m.Publish(&store.Batch{Alerts: []store.Alert{testAlert(t, fmt.Sprintf("a%d", i))}})
	}
	waitFor(t, "7 lines written", func() bool { return m.Stats()[0].Sent == 7 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range []string{p + ".2", p + ".1", p} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		n := 0
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if errs := checkOCSF(ev); len(errs) > 0 {
				t.Errorf("%s: %v", f, errs)
			}
			ids = append(ids, ev["finding_info"].(map[string]any)["uid"].(string))
			n++
		}
		fh.Close()
		if n > 2 {
			t.Errorf("%s has %d lines, more than max_size allows", f, n)
		}
	}
	if _, err := os.Stat(p + ".3"); err == nil {
		t.Error("kept more than max_files old files")
	}
	// The oldest went; the newest five remain, in order.
	if want := []string{"a2", "a3", "a4", "a5", "a6"}; !slices.Equal(ids, want) {
		t.Errorf("lines across files %v, want %v", ids, want)
	}
}

func TestOCSFHTTPSink(t *testing.T) {
	for _, format := range []string{"ndjson", "array"} {
		t.Run(format, func(t *testing.T) {
			var mu sync.Mutex
			var got []map[string]any
			var ctype string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var evs []map[string]any
				if format == "array" {
					if err := json.Unmarshal(b, &evs); err != nil {
						w.WriteHeader(400)
						return
					}
				} else {
					for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
						var ev map[string]any
						if err := json.Unmarshal([]byte(line), &ev); err != nil {
							w.WriteHeader(400)
							return
						}
						evs = append(evs, ev)
					}
				}
				mu.Lock()
				got, ctype = append(got, evs...), r.Header.Get("Content-Type")
				mu.Unlock()
				w.WriteHeader(202)
			}))
			defer srv.Close()
			m := runSink(t, SinkConfig{Type: TypeOCSFHTTP, URL: srv.URL + "/ingest", Format: format})
			m.Publish(testBatch(t))
			waitFor(t, "delivery", func() bool { return m.Stats()[0].Sent == 5 })
			mu.Lock()
			defer mu.Unlock()
			want := map[string]string{"ndjson": "application/x-ndjson", "array": "application/json"}[format]
			if len(got) != 5 || ctype != want {
				t.Fatalf("%d events, content type %q", len(got), ctype)
			}
			for _, ev := range got {
				if errs := checkOCSF(ev); len(errs) > 0 {
					t.Error(errs)
				}
			}
		})
	}
}
