package export

import (
	"path"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// facts are the fields every format picks from, extracted once per
// rendering: the row's columns plus, for an alert, its event.
type facts struct {
	id, agentID, host        string
	signature, name, message string
	cefSeverity, syslogSev   int
	rule, priority, source   string
	tactics, techniques      []string
	count                    int
	container, containerID   string
	image, namespace, pod    string
	procName, exe, cmdLine   string
	pid, ppid                int32
	parentExe                string
	user                     string
	uid                      uint32
	hasUID                   bool
	fileName, filePath       string
	srcIP, dstIP, dstName    string
	srcPort, dstPort         uint16
	transport                string
	action, outcome          string
	vuln, pkg, pkgVersion    string
	vulnSeverity             string
	kev                      bool
	cvss                     float64
	ev                       *event.Event
}

func factsOf(it *Item) facts {
	var f facts
	switch it.Kind {
	case KindAlert:
		a := it.Alert
		f.id, f.agentID, f.host = a.ID, a.AgentID, a.Host
		f.signature, f.name, f.message = a.Rule, a.Rule, a.Output
		f.rule, f.priority, f.source = a.Rule, a.Priority, a.Source
		f.cefSeverity, f.syslogSev = cefSeverity(a.Severity), clampSev(a.Severity)
		f.tactics, f.techniques, f.count = a.Tactics, a.Techniques, a.Count
		f.containerID, f.image, f.namespace, f.pod = a.ContainerID, a.Image, a.Namespace, a.Pod
		f.container = a.ContainerName
		if f.container == "" {
			f.container = a.ContainerID
		}
		f.action = strings.Join(a.Responses, "; ")
		if ev := it.event(); ev != nil {
			f.ev = ev
			p := &ev.Process
			f.procName, f.exe, f.pid, f.ppid = p.Name, p.Exe, p.PID, p.PPID
			f.cmdLine = p.CmdLine
			if f.cmdLine == "" && len(p.Args) > 0 {
				f.cmdLine = strings.Join(p.Args, " ")
			}
			f.user, f.uid, f.hasUID = p.User, p.UID, true
			if ev.Parent != nil {
				f.parentExe = ev.Parent.Exe
				if f.ppid == 0 {
					f.ppid = ev.Parent.PID
				}
			}
			if ev.File != nil {
				f.filePath = ev.File.Path
				f.fileName = path.Base(ev.File.Path)
			}
			if n := ev.Net; n != nil {
				if n.Src.IsValid() {
					f.srcIP, f.srcPort = n.Src.Addr().String(), n.Src.Port()
				}
				if n.Dst.IsValid() {
					f.dstIP, f.dstPort = n.Dst.Addr().String(), n.Dst.Port()
				}
				if len(n.Names) > 0 {
					f.dstName = n.Names[0]
				}
				f.transport = transportOf(n)
			}
			if w := ev.Workload; w != nil {
				if f.host == "" {
					f.host = w.Host
				}
				if f.image == "" {
					f.image = w.Image
				}
			}
		}
	case KindResponse:
		r := it.Response
		f.id, f.agentID = r.ID, r.AgentID
		f.signature = "response:" + r.Action
		f.name = "Response " + r.Action + " " + r.Outcome
		f.message = "response " + r.Action + " on " + r.Target + " by " + r.Actor + ": " + r.Outcome
		if r.Error != "" {
			f.message += " (" + r.Error + ")"
		}
		f.action, f.outcome = r.Action, r.Outcome
		f.containerID = r.Target
		f.user = r.Actor
		f.cefSeverity, f.syslogSev = 3, 5 // notice
		if r.Outcome == "failed" {
			f.cefSeverity, f.syslogSev = 6, 4
		}
	case KindFinding:
		v, s := it.Finding, it.Scan
		f.id = s.ID + "/" + v.VulnID + "/" + v.Package + "@" + v.Version
		if strings.HasPrefix(s.Source, "agent:") {
			f.agentID = strings.TrimPrefix(s.Source, "agent:")
		}
		f.signature = v.VulnID
		f.name = v.VulnID + " in " + v.Package + " " + v.Version
		f.message = v.Summary
		if f.message == "" {
			f.message = f.name
		}
		f.vuln, f.pkg, f.pkgVersion, f.vulnSeverity, f.cvss = v.VulnID, v.Package, v.Version, v.Severity, v.CVSS
		f.cefSeverity, f.syslogSev = vulnCEFSeverity(v.Severity), vulnSyslogSev(v.Severity)
		f.image = s.Target
		f.kev = v.KEV
	case KindCompliance:
		c := it.Compliance
		f.id, f.agentID = c.ID, c.AgentID
		f.signature = c.Benchmark + ":" + c.CheckID
		f.name = c.Title
		f.message = c.Benchmark + " " + c.CheckID + " " + c.Title + ": " + c.Status
		f.rule = c.CheckID
		f.outcome = c.Status
		f.cefSeverity, f.syslogSev = 3, 6
		if c.Status == "fail" {
			f.cefSeverity, f.syslogSev = 6, 4
		}
	}
	return f
}

func clampSev(rank int) int { return min(max(rank, 0), 7) }

func vulnSyslogSev(s string) int {
	switch strings.ToLower(s) {
	case "critical":
		return 2
	case "high":
		return 3
	case "medium", "moderate":
		return 4
	case "low":
		return 5
	}
	return 6
}

func transportOf(n *event.Net) string {
	switch {
	case n.Protocol == 6 || n.Type == "stream" && strings.HasPrefix(n.Family, "inet"):
		return "tcp"
	case n.Protocol == 17 || n.Type == "dgram" && strings.HasPrefix(n.Family, "inet"):
		return "udp"
	}
	return ""
}
