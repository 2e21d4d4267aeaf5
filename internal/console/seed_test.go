package console_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/store"
)

// xssOutput is an alert output an attacker controls (a file name, a
// command line): it must show as text and never become markup.
const xssOutput = `Shell spawned: cmd=<img src=x onerror="document.title='pwned'"> <script>document.title='pwned2'</script>`

// seeded names what seed put in the store.
type seeded struct {
	shell, etc, xss store.Alert
	incident        string
	digest          string
}

func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// storedAlert makes a store.Alert whose Raw is the agent's alert.Alert.
func storedAlert(t *testing.T, a alert.Alert, agentID, class string) store.Alert {
	t.Helper()
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	sa := store.Alert{
		ID: newID(t), AgentID: agentID, Time: a.Time, LastSeen: a.Time, Count: 1,
		Rule: a.Rule, Priority: a.Priority, Severity: severity(a.Priority), Source: a.Source,
		Tactics: a.Tactics, Techniques: a.Techniques, Output: a.Output, Class: class,
		Responses: a.Responses, Raw: raw,
	}
	if w := a.Event.Workload; w != nil {
		sa.Host, sa.ContainerID, sa.ContainerName, sa.Image = w.Host, w.ContainerID, w.ContainerName, w.Image
		sa.Pod, sa.Namespace = w.PodName, w.PodNamespace
	}
	sa.DedupKey = agentID + "\x00" + alert.Key(&a)
	return sa
}

func severity(p string) int {
	for i, n := range []string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"} {
		if n == p {
			return i
		}
	}
	return 7
}

// seed fills the store with one agent, three alerts (a shell in a
// container with its process tree, a host write, and one whose output is
// markup), an incident, inventory, a scan with a KEV finding and a profile.
func seed(t *testing.T, st store.Store) seeded {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if err := st.PutAgent(ctx, store.Agent{ID: "agent-1", Hostname: "node-1", Version: "test", Enrolled: now.Add(-time.Hour), LastSeen: now, CertSerial: "01", CertNotAfter: now.Add(24 * time.Hour)}); err != nil {
		t.Fatalf("PutAgent: %v", err)
	}
	cid := "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100"
	digest := "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	pgDigest := "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	cleanDigest := "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	web := &event.Workload{Host: "node-1", ContainerID: cid, ContainerName: "web-1", Runtime: "docker", Image: "nginx:1.25", ImageDigest: digest}
	shell := storedAlert(t, alert.Alert{
		Time: now.Add(-30 * time.Minute), Type: "alert", Rule: "Terminal shell in container", Priority: "critical", Source: alert.SourceRules,
		Tactics: []string{"TA0002 Execution"}, Techniques: []string{"T1059.004"},
		Output: "A shell was spawned in a container (user=www-data shell=sh parent=bash cmdline=sh -c id container=web-1)", Count: 1,
		Event: &event.Event{
			Time: now.Add(-30 * time.Minute), Type: event.ProcessExec,
			Process:   event.Process{PID: 4242, VPID: 42, PPID: 4200, Name: "sh", Exe: "/usr/bin/dash", Args: []string{"sh", "-c", "id"}, CmdLine: "sh -c id", UID: 33, User: "www-data"},
			Parent:    &event.Process{PID: 4200, PPID: 4100, Name: "bash", Exe: "/usr/bin/bash", Args: []string{"bash", "-i"}, CmdLine: "bash -i", UID: 33, User: "www-data"},
			Ancestors: []event.Ancestor{{PID: 4100, Name: "nginx", Exe: "/usr/sbin/nginx", Args: []string{"nginx: worker process"}}, {PID: 4001, Name: "nginx", Exe: "/usr/sbin/nginx", Args: []string{"nginx", "-g", "daemon off;"}}},
			Workload:  web,
		},
	}, "agent-1", "web")
	etc := storedAlert(t, alert.Alert{
		Time: now.Add(-20 * time.Minute), Type: "alert", Rule: "Write below etc", Priority: "warning", Source: alert.SourceRules,
		Tactics: []string{"TA0003 Persistence"}, Techniques: []string{"T1543"},
		Output: "File below /etc opened for writing (file=/etc/cron.d/x)", Count: 1,
		Event: &event.Event{Time: now.Add(-20 * time.Minute), Type: event.FileOpen,
			Process:  event.Process{PID: 777, Name: "tee", Exe: "/usr/bin/tee", CmdLine: "tee /etc/cron.d/x", User: "root"},
			Workload: &event.Workload{Host: "node-1"}},
	}, "agent-1", "host")
	xss := storedAlert(t, alert.Alert{
		Time: now.Add(-10 * time.Minute), Type: "alert", Rule: "Suspicious <b>markup</b> rule", Priority: "critical", Source: alert.SourceRules,
		Output: xssOutput, Count: 1,
		Event: &event.Event{Time: now.Add(-10 * time.Minute), Type: event.ProcessExec,
			Process:  event.Process{PID: 4300, Name: "sh", Exe: `/tmp/<img src=x onerror="document.title='pwned3'">`, CmdLine: `sh <script>x</script>`},
			Workload: web},
	}, "agent-1", "web")
	incID := newID(t)
	shell.IncidentID = incID
	inc := store.Incident{ID: incID, AgentID: "agent-1", Host: "node-1", WorkloadKey: cid, Title: "Terminal shell in container on web-1",
		FirstSeen: shell.Time, LastSeen: shell.Time, AlertCount: 1, Severity: shell.Severity, Priority: shell.Priority,
		Tactics: shell.Tactics, Techniques: shell.Techniques}
	hostData, _ := json.Marshal(map[string]string{"os": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.18.0"})
	ctrData, _ := json.Marshal(map[string]string{"image": "nginx:1.25", "state": "running"})
	scanID := newID(t)
	b := &store.Batch{
		Alerts:    []store.Alert{shell, etc, xss},
		Incidents: []store.Incident{inc},
		Assets: []store.Asset{
			{Kind: store.KindHost, ID: "node-1", AgentID: "agent-1", Name: "node-1", Data: hostData, FirstSeen: now.Add(-time.Hour), LastSeen: now},
			{Kind: store.KindContainer, ID: cid, AgentID: "agent-1", Name: "web-1", Data: ctrData, FirstSeen: now.Add(-time.Hour), LastSeen: now},
			{Kind: store.KindImage, ID: digest, AgentID: "agent-1", Name: "nginx:1.25", FirstSeen: now.Add(-time.Hour), LastSeen: now},
			{Kind: store.KindImage, ID: cleanDigest, AgentID: "agent-1", Name: "alpine:3.20", FirstSeen: now.Add(-time.Hour), LastSeen: now},
			{Kind: store.KindImage, ID: pgDigest, AgentID: "agent-1", Name: "postgres:16", FirstSeen: now.Add(-time.Hour), LastSeen: now},
		},
		Scans: []store.Scan{{
			ID: scanID, Time: now.Add(-50 * time.Minute), Target: "nginx:1.25", ImageDigest: digest, Source: "agent:agent-1",
			Summary: store.ScanSummary{Packages: 140, Findings: 2, Critical: 1, High: 1, KEV: 1},
			Findings: []store.Finding{
				{ScanID: scanID, VulnID: "CVE-2023-44487", CVE: "CVE-2023-44487", Package: "libnghttp2-14", Version: "1.52.0-1", PackageType: "deb", FixedVersion: "1.52.0-1+deb12u1", Severity: "HIGH", CVSS: 7.5, KEV: true, EPSS: 0.94, Summary: "HTTP/2 rapid reset"},
				{ScanID: scanID, VulnID: "CVE-2024-0001", Package: "libexample", Version: "1.0", PackageType: "deb", Severity: "CRITICAL", CVSS: 9.8, Summary: "an example"},
			},
			Report: json.RawMessage(`{}`),
			SBOM:   json.RawMessage(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}`),
		}, {
			ID: newID(t), Time: now.Add(-45 * time.Minute), Target: "postgres:16", ImageDigest: pgDigest, Source: "ci:pipeline",
			Summary: store.ScanSummary{Packages: 160, Findings: 17, Critical: 3, High: 10, Medium: 4},
			Report:  json.RawMessage(`{}`),
		}, {
			ID: newID(t), Time: now.Add(-40 * time.Minute), Target: "alpine:3.20", ImageDigest: cleanDigest, Source: "agent:agent-1",
			Summary: store.ScanSummary{Packages: 15}, Report: json.RawMessage(`{}`),
		}},
		Compliance: []store.ComplianceResult{
			{ID: newID(t), AgentID: "agent-1", Time: now, Benchmark: "CIS Docker 1.6", CheckID: "5.4", Title: "Ensure that privileged containers are not used", Status: "fail"},
			{ID: newID(t), AgentID: "agent-1", Time: now, Benchmark: "CIS Docker 1.6", CheckID: "2.1", Title: "Run the Docker daemon as a non-root user, if possible", Status: "manual"},
		},
		Profiles: []store.Profile{{AgentID: "agent-1", Class: "web", Mode: "monitor", Updated: now, Data: profileJSON(now)}},
	}
	if _, err := st.Apply(ctx, b); err != nil {
		t.Fatalf("seeding the store: %v", err)
	}
	return seeded{shell: shell, etc: etc, xss: xss, incident: incID, digest: digest}
}

// profileJSON is internal/profile's Profile as encoding/json writes it
// (the struct has yaml tags only, so the keys are the Go field names).
func profileJSON(now time.Time) json.RawMessage {
	p := map[string]any{
		"Class": "web", "Mode": "monitor", "Since": now.Add(-48 * time.Hour), "Updated": now,
		"Executables": []map[string]string{{"Path": "/usr/sbin/nginx", "SHA256": "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"}, {"Path": "/docker-entrypoint.sh"}},
		"Pairs":       []map[string]string{{"Parent": "/docker-entrypoint.sh", "Child": "/usr/sbin/nginx"}},
		"Listen":      []map[string]any{{"Proto": "tcp", "Port": 80}},
		"Outbound":    []map[string]any{{"Host": "10.0.0.0/8", "Port": 5432}},
		"Writes":      []string{"/var/cache/nginx/**", "/var/log/nginx/access.log"},
	}
	b, _ := json.Marshal(p)
	return b
}

// lateAlert is a notice on the host, stored after the page loaded.
func lateAlert(t *testing.T) store.Alert {
	now := time.Now().UTC()
	return storedAlert(t, alert.Alert{
		Time: now, Type: "alert", Rule: "Late arrival of a notice", Priority: "notice", Source: alert.SourceRules,
		Output: "something noticed after the page loaded", Count: 1,
		Event: &event.Event{Time: now, Type: event.ProcessExec, Process: event.Process{PID: 1234, Name: "true", Exe: "/usr/bin/true"},
			Workload: &event.Workload{Host: "node-1"}},
	}, "agent-1", "host")
}
