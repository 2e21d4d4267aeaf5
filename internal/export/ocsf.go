package export

import (
	"path"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/version"
)

// OCSF 1.1 classes Vigil writes.
const (
	OCSFVersion = "1.1.0"

	ClassFileActivity         = 1001
	ClassProcessActivity      = 1007
	ClassVulnerabilityFinding = 2002
	ClassComplianceFinding    = 2003
	ClassDetectionFinding     = 2004
	ClassNetworkActivity      = 4001
)

var className = map[int]string{
	ClassFileActivity:         "File System Activity",
	ClassProcessActivity:      "Process Activity",
	ClassVulnerabilityFinding: "Vulnerability Finding",
	ClassComplianceFinding:    "Compliance Finding",
	ClassDetectionFinding:     "Detection Finding",
	ClassNetworkActivity:      "Network Activity",
}

var categoryName = map[int]string{1: "System Activity", 2: "Findings", 4: "Network Activity"}

var severityName = [...]string{"Unknown", "Informational", "Low", "Medium", "High", "Critical", "Fatal"}

// ocsfSeverity maps Falco's priority rank (0 emergency … 7 debug) to the
// OCSF severity_id.
func ocsfSeverity(rank int) int {
	m := [...]int{6, 5, 5, 4, 3, 2, 1, 1}
	if rank < 0 || rank >= len(m) {
		return 0
	}
	return m[rank]
}

func vulnOCSFSeverity(s string) int {
	switch strings.ToLower(s) {
	case "critical":
		return 5
	case "high":
		return 4
	case "medium", "moderate":
		return 3
	case "low":
		return 2
	case "negligible", "none", "informational":
		return 1
	}
	return 0
}

// base fills the attributes every class has.
func ocsfBase(class, activity int, activityName string, t time.Time, sev int, uid string, profiles ...string) obj {
	cat := class / 1000
	m := obj{
		"class_uid":     class,
		"class_name":    className[class],
		"category_uid":  cat,
		"category_name": categoryName[cat],
		"activity_id":   activity,
		"activity_name": activityName,
		"type_uid":      class*100 + activity,
		"type_name":     className[class] + ": " + activityName,
		"time":          t.UnixMilli(),
		"severity_id":   sev,
		"severity":      severityName[sev],
	}
	md := obj{
		"version": OCSFVersion,
		"product": obj{"name": "Vigil", "vendor_name": "Vigil", "version": version.Version},
	}
	if uid != "" {
		md["uid"] = uid
	}
	if len(profiles) > 0 {
		md["profiles"] = profiles
	}
	m["metadata"] = md
	return m
}

// OCSF maps an item to its OCSF 1.1 class: an alert to a Detection
// Finding (Create), a response to a Detection Finding (Update) of the alert
// it answers, a vulnerability finding to a Vulnerability Finding, a
// compliance result to a Compliance Finding.
func OCSF(it *Item) map[string]any {
	switch it.Kind {
	case KindAlert:
		return ocsfAlert(it)
	case KindResponse:
		return ocsfResponse(it)
	case KindFinding:
		return ocsfVuln(it)
	case KindCompliance:
		return ocsfCompliance(it)
	}
	return nil
}

func ocsfAlert(it *Item) obj {
	a := it.Alert
	f := factsOf(it)
	sev := ocsfSeverity(a.Severity)
	profiles := []string{"host"}
	if a.ContainerID != "" {
		profiles = append(profiles, "container")
	}
	m := ocsfBase(ClassDetectionFinding, 1, "Create", a.Time, sev, a.ID, profiles...)
	m["message"] = a.Output
	m["status_id"] = 1
	m["status"] = "New"
	m["start_time"] = a.Time.UnixMilli()
	if !a.LastSeen.IsZero() {
		m["end_time"] = a.LastSeen.UnixMilli()
	}
	if a.Count > 0 {
		m["count"] = a.Count
	}
	if a.IncidentID != "" {
		m["metadata"].(obj)["correlation_uid"] = a.IncidentID
	}
	analyticType, analyticTypeID := "Rule", 1
	if a.Source == "profile" {
		analyticType, analyticTypeID = "Behavioral", 2
	}
	fi := obj{
		"uid":             a.ID,
		"title":           a.Rule,
		"desc":            a.Output,
		"types":           []string{a.Source},
		"analytic":        obj{"name": a.Rule, "type": analyticType, "type_id": analyticTypeID},
		"created_time":    a.Time.UnixMilli(),
		"first_seen_time": a.Time.UnixMilli(),
	}
	if a.Source == "" {
		delete(fi, "types")
	}
	if !a.LastSeen.IsZero() {
		fi["last_seen_time"] = a.LastSeen.UnixMilli()
	}
	if atk := ocsfAttacks(a.Tactics, a.Techniques); len(atk) > 0 {
		fi["attacks"] = atk
		m["attacks"] = atk
	}
	m["finding_info"] = fi
	m["device"] = ocsfDevice(a.Host, a.AgentID, f.ev)
	if f.ev != nil {
		m["actor"] = ocsfActor(f.ev)
	}
	var res []obj
	if a.ContainerID != "" {
		c := obj{"uid": a.ContainerID}
		put(c, "name", a.ContainerName)
		if a.Image != "" {
			c["image"] = obj{"name": a.Image}
		}
		if f.ev != nil && f.ev.Workload != nil {
			put(c, "runtime", f.ev.Workload.Runtime)
			if d := f.ev.Workload.ImageDigest; d != "" {
				if img, ok := c["image"].(obj); ok {
					img["uid"] = d
				} else {
					c["image"] = obj{"uid": d}
				}
			}
		}
		m["container"] = c
		r := obj{"uid": a.ContainerID, "type": "container"}
		put(r, "name", a.ContainerName)
		res = append(res, r)
	}
	if a.Pod != "" {
		r := obj{"name": a.Pod, "type": "pod"}
		put(r, "namespace", a.Namespace)
		res = append(res, r)
	}
	if len(res) == 0 {
		res = append(res, obj{"name": a.Host, "type": "host", "uid": a.AgentID})
	}
	m["resources"] = res
	return m
}

// ocsfAttacks pairs MITRE tags into attack objects: one per technique,
// with the tactic when the alert names exactly one; one per tactic when
// it names no technique.
func ocsfAttacks(tactics, techniques []string) []obj {
	var out []obj
	tactic := func(s string) obj {
		id, name := splitTactic(s)
		o := obj{"uid": id}
		put(o, "name", name)
		return o
	}
	for _, t := range techniques {
		a := obj{"technique": obj{"uid": t}}
		if len(tactics) == 1 {
			a["tactic"] = tactic(tactics[0])
		}
		out = append(out, a)
	}
	if len(techniques) == 0 {
		for _, t := range tactics {
			out = append(out, obj{"tactic": tactic(t)})
		}
	}
	return out
}

func ocsfDevice(host, agentID string, ev *event.Event) obj {
	d := obj{"type_id": 0, "type": "Unknown"}
	if host == "" && ev != nil && ev.Workload != nil {
		host = ev.Workload.Host
	}
	put(d, "hostname", host)
	put(d, "uid", agentID)
	return d
}

func ocsfUser(name string, uid uint32) obj {
	u := obj{"uid": itoa(uint64(uid))}
	put(u, "name", name)
	return u
}

func ocsfProcess(p *event.Process) obj {
	o := obj{"pid": int(p.PID)}
	put(o, "name", p.Name)
	cmd := p.CmdLine
	if cmd == "" && len(p.Args) > 0 {
		cmd = strings.Join(p.Args, " ")
	}
	put(o, "cmd_line", cmd)
	if p.Exe != "" {
		o["file"] = ocsfFile(p.Exe, 1)
	}
	o["user"] = ocsfUser(p.User, p.UID)
	if !p.StartTime.IsZero() {
		o["created_time"] = p.StartTime.UnixMilli()
	}
	if p.TID != 0 {
		o["tid"] = int(p.TID)
	}
	return o
}

func ocsfFile(p string, typeID int) obj {
	names := [...]string{"Unknown", "Regular File", "Folder", "Character Device", "Block Device", "Local Socket", "Named Pipe", "Symbolic Link"}
	f := obj{"name": path.Base(p), "path": p, "type_id": typeID, "type": names[typeID]}
	if dir := path.Dir(p); dir != "." && dir != p {
		f["parent_folder"] = dir
	}
	return f
}

// ocsfActor is the process that acted, with its parent and lineage.
func ocsfActor(ev *event.Event) obj {
	p := ocsfProcess(&ev.Process)
	if ev.Parent != nil {
		p["parent_process"] = ocsfProcess(ev.Parent)
	} else if ev.Process.PPID != 0 {
		p["parent_process"] = obj{"pid": int(ev.Process.PPID)}
	}
	var lineage []string
	if ev.Parent != nil {
		lineage = append(lineage, exeOrName(ev.Parent.Exe, ev.Parent.Name))
	}
	for _, a := range ev.Ancestors {
		lineage = append(lineage, exeOrName(a.Exe, a.Name))
	}
	put(p, "lineage", lineage)
	return obj{"process": p, "user": ocsfUser(ev.Process.User, ev.Process.UID)}
}

func exeOrName(exe, name string) string {
	if exe != "" {
		return exe
	}
	return name
}

func ocsfResponse(it *Item) obj {
	r := it.Response
	sev := 1
	if r.Outcome == "failed" {
		sev = 3
	}
	m := ocsfBase(ClassDetectionFinding, 2, "Update", r.Time, sev, r.ID, "security_control")
	uid := r.AlertID
	if uid == "" {
		uid = r.ID
	}
	msg := factsOf(it).message
	m["message"] = msg
	m["finding_info"] = obj{"uid": uid, "title": "Response " + r.Action + ": " + r.Outcome, "desc": msg, "types": []string{"response"}, "modified_time": r.Time.UnixMilli()}
	m["status_id"] = 2
	m["status"] = "In Progress"
	id, name := disposition(r.Action, r.Outcome)
	m["disposition_id"] = id
	m["disposition"] = name
	m["device"] = ocsfDevice("", r.AgentID, nil)
	m["resources"] = []obj{{"uid": r.Target, "type": "container"}}
	unm := obj{"action": r.Action, "actor": r.Actor, "outcome": r.Outcome}
	put(unm, "error", r.Error)
	m["unmapped"] = unm
	return m
}

// disposition maps a response action to the Security Control profile's
// disposition_id.
func disposition(action, outcome string) (int, string) {
	if outcome != "done" {
		return 17, "Logged" // monitor mode or failed: nothing was done
	}
	switch action {
	case "kill", "stop":
		return 2, "Blocked"
	case "freeze":
		return 3, "Quarantined"
	case "isolate":
		return 4, "Isolated"
	case "unfreeze", "unisolate":
		return 9, "Restored"
	}
	return 7, "Custom Action"
}

func ocsfVuln(it *Item) obj {
	v, s := it.Finding, it.Scan
	f := factsOf(it)
	sev := vulnOCSFSeverity(v.Severity)
	m := ocsfBase(ClassVulnerabilityFinding, 1, "Create", s.Time, sev, f.id)
	title := v.VulnID + " in " + v.Package + " " + v.Version
	m["message"] = title
	m["status_id"] = 1
	m["status"] = "New"
	m["finding_info"] = obj{"uid": f.id, "title": title, "types": []string{"Vulnerability"}, "created_time": s.Time.UnixMilli(), "product_uid": s.Source}
	cveID := v.CVE
	if cveID == "" {
		cveID = v.VulnID
	}
	pkg := obj{"name": v.Package, "version": v.Version}
	put(pkg, "purl", v.PURL)
	put(pkg, "type", v.PackageType)
	vuln := obj{
		"cve":      obj{"uid": cveID},
		"title":    v.VulnID,
		"severity": titleCase(v.Severity),
		"packages": []obj{pkg},
	}
	put(vuln, "desc", v.Summary)
	if v.FixedVersion != "" {
		vuln["remediation"] = obj{"desc": "Upgrade " + v.Package + " to " + v.FixedVersion + " or later"}
	}
	if v.KEV {
		vuln["is_exploit_available"] = true
	}
	m["vulnerabilities"] = []obj{vuln}
	r := obj{"name": s.Target, "type": "container_image"}
	put(r, "uid", s.ImageDigest)
	m["resource"] = r
	unm := obj{"vuln_id": v.VulnID, "kev": v.KEV}
	if v.CVSS > 0 {
		unm["cvss_base_score"] = v.CVSS
	}
	if v.EPSS > 0 {
		unm["epss"] = v.EPSS
	}
	put(unm, "fixed_version", v.FixedVersion)
	put(unm, "aliases", v.Aliases)
	put(unm, "scan_id", s.ID)
	m["unmapped"] = unm
	if f.agentID != "" {
		m["device"] = ocsfDevice("", f.agentID, nil)
	}
	return m
}

func ocsfCompliance(it *Item) obj {
	c := it.Compliance
	sev := 1
	statusID, status := 99, titleCase(c.Status)
	switch c.Status {
	case "pass":
		statusID = 1
	case "warn":
		statusID, status = 2, "Warning"
	case "fail":
		statusID, sev = 3, 3
	}
	m := ocsfBase(ClassComplianceFinding, 1, "Create", c.Time, sev, c.ID)
	m["message"] = factsOf(it).message
	m["finding_info"] = obj{"uid": c.ID, "title": c.Title, "types": []string{"Compliance"}, "created_time": c.Time.UnixMilli()}
	comp := obj{"standards": []string{c.Benchmark}, "control": c.CheckID, "status_id": statusID, "status": status}
	m["compliance"] = comp
	if c.AgentID != "" {
		m["device"] = ocsfDevice("", c.AgentID, nil)
	}
	return m
}

// OCSFEvent maps a runtime event to OCSF 1.1 Process Activity (1007), File
// System Activity (1001) or Network Activity (4001), with the Host profile
// (device, actor); agentID becomes device.uid. It returns nil for the kinds
// none of these classes describes (privilege changes, module loads, bpf).
func OCSFEvent(ev *event.Event, agentID string) map[string]any {
	host := ""
	if ev.Workload != nil {
		host = ev.Workload.Host
	}
	profiles := []string{"host"}
	if ev.Workload != nil && ev.Workload.ContainerID != "" {
		profiles = append(profiles, "container")
	}
	var m obj
	switch ev.Type {
	case event.ProcessExec, event.ProcessFork, event.ProcessExit, event.Ptrace, event.PrivSetuid:
		act, name := 99, ev.Type.String()
		switch ev.Type {
		case event.ProcessExec, event.ProcessFork:
			act, name = 1, "Launch"
		case event.ProcessExit:
			act, name = 2, "Terminate"
		case event.Ptrace:
			act, name = 4, "Inject"
		case event.PrivSetuid:
			act, name = 5, "Set User ID"
		}
		m = ocsfBase(ClassProcessActivity, act, name, ev.Time, 1, "", profiles...)
		p := ocsfProcess(&ev.Process)
		if ev.Parent != nil {
			p["parent_process"] = ocsfProcess(ev.Parent)
		}
		if ev.Type == event.Ptrace && ev.Target != nil {
			p = ocsfProcess(ev.Target)
		}
		m["process"] = p
		if ev.Exit != nil {
			m["exit_code"] = ev.Exit.Code
		}
	case event.FileOpen, event.FileUnlink, event.FileRename, event.FileLink, event.FileSymlink,
		event.FileChmod, event.FileChown, event.FileMkdir, event.Mount, event.Umount:
		act, name := 99, ev.Type.String()
		switch ev.Type {
		case event.FileOpen:
			act, name = 14, "Open"
		case event.FileUnlink:
			act, name = 4, "Delete"
		case event.FileRename:
			act, name = 5, "Rename"
		case event.FileLink, event.FileSymlink, event.FileMkdir:
			act, name = 1, "Create"
		case event.FileChmod, event.FileChown:
			act, name = 7, "Set Security"
		case event.Mount:
			act, name = 12, "Mount"
		case event.Umount:
			act, name = 13, "Unmount"
		}
		m = ocsfBase(ClassFileActivity, act, name, ev.Time, 1, "", profiles...)
		p, typeID := "", 0
		if ev.File != nil {
			p = ev.File.Path
		}
		switch ev.Type {
		case event.FileMkdir, event.Mount, event.Umount:
			typeID = 2
		}
		if ev.Detail != nil && (ev.Type == event.Mount || ev.Type == event.Umount) && ev.Detail.Target != "" {
			p = ev.Detail.Target
		}
		if p == "" {
			p = "unknown"
		}
		m["file"] = ocsfFile(p, typeID)
		if ev.File != nil && ev.File.NewPath != "" {
			nt := 0
			if ev.Type == event.FileSymlink {
				nt = 7
			}
			m["file_result"] = ocsfFile(ev.File.NewPath, nt)
		}
	case event.NetConnect, event.NetAccept, event.NetBind, event.NetListen, event.NetSocket, event.NetDNS:
		act, name := 99, ev.Type.String()
		switch ev.Type {
		case event.NetConnect, event.NetAccept:
			act, name = 1, "Open"
			if ev.Ret < 0 {
				act, name = 4, "Fail"
			}
		}
		m = ocsfBase(ClassNetworkActivity, act, name, ev.Time, 1, "", profiles...)
		src, dst := obj{}, obj{}
		dir := 0
		if n := ev.Net; n != nil {
			if n.Src.IsValid() {
				src["ip"], src["port"] = n.Src.Addr().String(), int(n.Src.Port())
			}
			if n.Dst.IsValid() {
				dst["ip"], dst["port"] = n.Dst.Addr().String(), int(n.Dst.Port())
			}
			if len(n.Names) > 0 {
				dst["hostname"] = n.Names[0]
			}
			ci := obj{}
			if n.Protocol != 0 {
				ci["protocol_num"] = n.Protocol
			}
			put(ci, "protocol_name", transportOf(n))
			switch n.Family {
			case "inet":
				ci["protocol_ver_id"] = 4
			case "inet6":
				ci["protocol_ver_id"] = 6
			}
			switch ev.Type {
			case event.NetConnect:
				dir = 2
			case event.NetAccept:
				dir = 1
			}
			ci["direction_id"] = dir
			ci["direction"] = [...]string{"Unknown", "Inbound", "Outbound"}[dir]
			m["connection_info"] = ci
		}
		if len(src) == 0 && len(dst) == 0 {
			// Nothing known of the endpoints (a unix socket): the local
			// end is the host.
			src["hostname"] = host
			if ev.Net != nil && ev.Net.UnixPath != "" {
				src["name"] = ev.Net.UnixPath
			}
		}
		if len(src) > 0 {
			m["src_endpoint"] = src
		}
		if len(dst) > 0 {
			m["dst_endpoint"] = dst
		}
	default:
		return nil
	}
	m["device"] = ocsfDevice(host, agentID, ev)
	m["actor"] = ocsfActor(ev)
	if (ev.Type == event.ProcessExec || ev.Type == event.ProcessFork) && ev.Parent != nil {
		// The actor of a launch is the launcher: the parent, with the
		// rest of the lineage.
		p := ocsfProcess(ev.Parent)
		var lineage []string
		for _, a := range ev.Ancestors {
			lineage = append(lineage, exeOrName(a.Exe, a.Name))
		}
		put(p, "lineage", lineage)
		m["actor"] = obj{"process": p, "user": ocsfUser(ev.Parent.User, ev.Parent.UID)}
	}
	if w := ev.Workload; w != nil && w.ContainerID != "" {
		c := obj{"uid": w.ContainerID}
		put(c, "name", w.ContainerName)
		put(c, "runtime", w.Runtime)
		if w.Image != "" || w.ImageDigest != "" {
			img := obj{}
			put(img, "name", w.Image)
			put(img, "uid", w.ImageDigest)
			c["image"] = img
		}
		m["container"] = c
	}
	return m
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
