package export

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/version"
)

// obj is a JSON object under construction.
type obj = map[string]any

// put sets m[a][b]… = v along a dotted path, skipping zero values.
func put(m obj, path string, v any) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return
		}
	case int:
		if x == 0 {
			return
		}
	case int32:
		if x == 0 {
			return
		}
	case uint16:
		if x == 0 {
			return
		}
	case float64:
		if x == 0 {
			return
		}
	case []string:
		if len(x) == 0 {
			return
		}
	case nil:
		return
	}
	for {
		k, rest, ok := strings.Cut(path, ".")
		if !ok {
			m[path] = v
			return
		}
		sub, _ := m[k].(obj)
		if sub == nil {
			sub = obj{}
			m[k] = sub
		}
		m, path = sub, rest
	}
}

// ECS renders an item as an Elasticsearch document with Elastic Common
// Schema field names.
func ECS(it *Item) map[string]any {
	f := factsOf(it)
	d := obj{"@timestamp": it.Time().UTC().Format(time.RFC3339Nano)}
	put(d, "ecs.version", "8.11.0")
	put(d, "event.id", f.id)
	put(d, "event.provider", "vigil")
	put(d, "event.dataset", "vigil."+indexKind(it.Kind))
	put(d, "message", f.message)
	put(d, "agent.type", "vigil")
	put(d, "agent.id", f.agentID)
	put(d, "agent.version", version.Version)
	put(d, "host.hostname", f.host)
	put(d, "host.name", f.host)
	put(d, "event.severity", f.cefSeverity)
	switch it.Kind {
	case KindAlert:
		a := it.Alert
		put(d, "event.kind", "alert")
		cat, typ, action := []string{"intrusion_detection"}, []string{"info"}, ""
		if f.ev != nil {
			c, t := ecsCategory(f.ev.Type)
			if c != "" {
				cat = append(cat, c)
			}
			if t != "" {
				typ = []string{t}
			}
			action = f.ev.Type.String()
		}
		put(d, "event.category", cat)
		put(d, "event.type", typ)
		put(d, "event.action", action)
		put(d, "event.start", a.Time.UTC().Format(time.RFC3339Nano))
		if !a.LastSeen.IsZero() {
			put(d, "event.end", a.LastSeen.UTC().Format(time.RFC3339Nano))
		}
		put(d, "log.level", a.Priority)
		put(d, "rule.name", a.Rule)
		put(d, "rule.id", a.Rule)
		put(d, "rule.category", a.Source)
		put(d, "rule.ruleset", a.Source)
		putThreat(d, a.Tactics, a.Techniques)
		put(d, "vigil.alert.count", a.Count)
		put(d, "vigil.alert.incident_id", a.IncidentID)
		put(d, "vigil.alert.class", a.Class)
		put(d, "vigil.alert.responses", a.Responses)
		putWorkload(d, &f)
		if ev := f.ev; ev != nil {
			putProcess(d, ev)
			if ev.File != nil {
				put(d, "file.path", ev.File.Path)
				put(d, "file.name", f.fileName)
				put(d, "file.target_path", ev.File.NewPath)
			}
			if n := ev.Net; n != nil {
				put(d, "source.ip", f.srcIP)
				if f.srcPort != 0 {
					put(d, "source.port", int(f.srcPort))
				}
				put(d, "destination.ip", f.dstIP)
				if f.dstPort != 0 {
					put(d, "destination.port", int(f.dstPort))
				}
				put(d, "destination.domain", f.dstName)
				put(d, "network.transport", f.transport)
				switch n.Family {
				case "inet":
					put(d, "network.type", "ipv4")
				case "inet6":
					put(d, "network.type", "ipv6")
				}
			}
			if w := ev.Workload; w != nil {
				put(d, "container.runtime", w.Runtime)
				if w.ImageDigest != "" {
					put(d, "container.image.hash.all", []string{w.ImageDigest})
				}
			}
		}
	case KindResponse:
		r := it.Response
		put(d, "event.kind", "event")
		put(d, "event.category", []string{"intrusion_detection"})
		put(d, "event.type", []string{"change"})
		put(d, "event.action", r.Action)
		put(d, "event.outcome", responseOutcome(r.Outcome))
		put(d, "user.name", r.Actor)
		put(d, "vigil.response.target", r.Target)
		put(d, "vigil.response.alert_id", r.AlertID)
		put(d, "vigil.response.outcome", r.Outcome)
		put(d, "vigil.response.error", r.Error)
		if r.Undone {
			put(d, "vigil.response.undone", true)
		}
	case KindFinding:
		v, s := it.Finding, it.Scan
		put(d, "event.kind", "state")
		put(d, "event.category", []string{"vulnerability", "package"})
		put(d, "event.type", []string{"info"})
		put(d, "event.action", "vulnerability-detected")
		put(d, "vulnerability.id", v.VulnID)
		put(d, "vulnerability.severity", titleCase(v.Severity))
		if v.CVSS > 0 {
			put(d, "vulnerability.score.base", v.CVSS)
			put(d, "vulnerability.classification", "CVSS")
		}
		put(d, "vulnerability.description", v.Summary)
		put(d, "vulnerability.scanner.vendor", "Vigil")
		put(d, "vulnerability.enumeration", enumeration(v.VulnID))
		put(d, "package.name", v.Package)
		put(d, "package.version", v.Version)
		put(d, "package.type", v.PackageType)
		put(d, "vigil.finding.cve", v.CVE)
		put(d, "vigil.finding.purl", v.PURL)
		put(d, "vigil.finding.fixed_version", v.FixedVersion)
		put(d, "vigil.finding.kev", v.KEV)
		put(d, "vigil.finding.epss", v.EPSS)
		put(d, "vigil.finding.aliases", v.Aliases)
		put(d, "vigil.scan.id", s.ID)
		put(d, "vigil.scan.target", s.Target)
		put(d, "vigil.scan.source", s.Source)
		put(d, "container.image.name", s.Target)
		if s.ImageDigest != "" {
			put(d, "container.image.hash.all", []string{s.ImageDigest})
		}
	case KindCompliance:
		c := it.Compliance
		put(d, "event.kind", "state")
		put(d, "event.category", []string{"configuration"})
		put(d, "event.type", []string{"info"})
		put(d, "event.action", "compliance-check")
		put(d, "event.outcome", complianceOutcome(c.Status))
		put(d, "rule.id", c.CheckID)
		put(d, "rule.name", c.Title)
		put(d, "rule.ruleset", c.Benchmark)
		put(d, "vigil.compliance.status", c.Status)
		put(d, "vigil.compliance.benchmark", c.Benchmark)
	}
	return d
}

func putThreat(d obj, tactics, techniques []string) {
	if len(tactics) == 0 && len(techniques) == 0 {
		return
	}
	put(d, "threat.framework", "MITRE ATT&CK")
	var tids, tnames []string
	for _, t := range tactics {
		id, name := splitTactic(t)
		tids = append(tids, id)
		if name != "" {
			tnames = append(tnames, name)
		}
	}
	put(d, "threat.tactic.id", tids)
	put(d, "threat.tactic.name", tnames)
	var tech, sub []string
	seen := map[string]bool{}
	for _, t := range techniques {
		parent, _, isSub := strings.Cut(t, ".")
		if isSub {
			sub = append(sub, t)
		}
		if !seen[parent] {
			seen[parent] = true
			tech = append(tech, parent)
		}
	}
	put(d, "threat.technique.id", tech)
	put(d, "threat.technique.subtechnique.id", sub)
}

// splitTactic splits "TA0002 Execution" into its ID and name.
func splitTactic(s string) (id, name string) {
	id, name, _ = strings.Cut(strings.TrimSpace(s), " ")
	return id, strings.TrimSpace(name)
}

func putWorkload(d obj, f *facts) {
	put(d, "container.id", f.containerID)
	if f.container != f.containerID {
		put(d, "container.name", f.container)
	}
	put(d, "container.image.name", f.image)
	if f.namespace != "" || f.pod != "" {
		put(d, "orchestrator.type", "kubernetes")
		put(d, "orchestrator.namespace", f.namespace)
		if f.pod != "" {
			put(d, "orchestrator.resource.type", "pod")
			put(d, "orchestrator.resource.name", f.pod)
		}
	}
}

func putProcess(d obj, ev *event.Event) {
	p := &ev.Process
	put(d, "process.pid", int(p.PID))
	put(d, "process.name", p.Name)
	put(d, "process.executable", p.Exe)
	cmd := p.CmdLine
	if cmd == "" && len(p.Args) > 0 {
		cmd = strings.Join(p.Args, " ")
	}
	put(d, "process.command_line", cmd)
	put(d, "process.args", p.Args)
	if len(p.Args) > 0 {
		put(d, "process.args_count", len(p.Args))
	}
	put(d, "process.working_directory", p.Cwd)
	if !p.StartTime.IsZero() {
		put(d, "process.start", p.StartTime.UTC().Format(time.RFC3339Nano))
	}
	put(d, "process.user.id", strconv.FormatUint(uint64(p.UID), 10))
	put(d, "process.user.name", p.User)
	put(d, "process.group.id", strconv.FormatUint(uint64(p.GID), 10))
	put(d, "process.group.name", p.Group)
	put(d, "user.id", strconv.FormatUint(uint64(p.UID), 10))
	put(d, "user.name", p.User)
	if p.TTY != "" {
		put(d, "process.tty.char_device.major", int(p.TTYNr>>8&0xfff))
		put(d, "process.tty.char_device.minor", int(p.TTYNr&0xff|p.TTYNr>>12&0xfff00))
	}
	if q := ev.Parent; q != nil {
		put(d, "process.parent.pid", int(q.PID))
		put(d, "process.parent.name", q.Name)
		put(d, "process.parent.executable", q.Exe)
		put(d, "process.parent.command_line", q.CmdLine)
		put(d, "process.parent.args", q.Args)
	} else if p.PPID != 0 {
		put(d, "process.parent.pid", int(p.PPID))
	}
	if len(ev.Ancestors) > 0 {
		anc := make([]obj, 0, len(ev.Ancestors))
		for _, a := range ev.Ancestors {
			o := obj{"pid": int(a.PID)}
			put(o, "name", a.Name)
			put(o, "executable", a.Exe)
			put(o, "args", a.Args)
			anc = append(anc, o)
		}
		put(d, "vigil.process.ancestors", anc)
	}
}

// ecsCategory gives the ECS event.category and event.type of an event kind.
func ecsCategory(k event.Kind) (string, string) {
	switch k {
	case event.ProcessExec:
		return "process", "start"
	case event.ProcessFork:
		return "process", "start"
	case event.ProcessExit:
		return "process", "end"
	case event.FileOpen:
		return "file", "access"
	case event.FileUnlink:
		return "file", "deletion"
	case event.FileMkdir:
		return "file", "creation"
	case event.FileRename, event.FileLink, event.FileSymlink, event.FileChmod, event.FileChown:
		return "file", "change"
	case event.NetConnect, event.NetAccept:
		return "network", "connection"
	case event.NetSocket, event.NetBind, event.NetListen, event.NetDNS:
		return "network", "info"
	case event.PrivSetuid, event.PrivSetgid, event.PrivCapset:
		return "iam", "change"
	case event.ModuleLoad, event.BPF:
		return "driver", "info"
	case event.Ptrace, event.MemfdCreate, event.Unshare, event.Setns, event.FDDup:
		return "process", "info"
	case event.Mount, event.Umount:
		return "configuration", "change"
	}
	return "", ""
}

func responseOutcome(o string) string {
	switch o {
	case "done":
		return "success"
	case "failed":
		return "failure"
	}
	return "unknown"
}

func complianceOutcome(s string) string {
	switch s {
	case "pass":
		return "success"
	case "fail":
		return "failure"
	}
	return "unknown"
}

func titleCase(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ToLower(s)
	return strings.ToUpper(s[:1]) + s[1:]
}

func enumeration(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return ""
}

func indexKind(kind string) string {
	switch kind {
	case KindAlert:
		return "alerts"
	case KindResponse:
		return "responses"
	case KindFinding:
		return "findings"
	}
	return "compliance"
}

// Elasticsearch/OpenSearch bulk API.
type elasticSink struct {
	*httpPoster
	endpoint string
	auth     string
}

func newElastic(c SinkConfig) (*elasticSink, error) {
	p, err := newHTTPPoster(c)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.URL)
	s := &elasticSink{httpPoster: p, endpoint: u.JoinPath("_bulk").String()}
	switch {
	case c.APIKey != "":
		s.auth = "ApiKey " + c.APIKey
	case c.Username != "":
		s.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
	}
	return s, nil
}

// index names the index (or data stream) of an item.
func (s *elasticSink) index(it *Item) string {
	k := indexKind(it.Kind)
	if s.cfg.DataStream {
		return "logs-" + s.cfg.IndexPrefix + "." + k + "-default"
	}
	return s.cfg.IndexPrefix + "-" + k + "-" + it.Time().UTC().Format("2006.01.02")
}

// encodeBulk appends the action and document lines of it.
func (s *elasticSink) encodeBulk(buf []byte, it *Item) ([]byte, error) {
	action, _ := json.Marshal(obj{"create": obj{"_index": s.index(it)}})
	doc, err := appendJSON(nil, ECS(it))
	if err != nil {
		return buf, err
	}
	buf = append(buf, action...)
	buf = append(buf, '\n')
	buf = append(buf, doc...)
	return append(buf, '\n'), nil
}

type bulkReply struct {
	Errors bool                        `json:"errors"`
	Items  []map[string]bulkItemResult `json:"items"`
}

type bulkItemResult struct {
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

func (s *elasticSink) send(ctx context.Context, items []*Item) error {
	var body []byte
	for _, it := range items {
		var err error
		if body, err = s.encodeBulk(body, it); err != nil {
			return permanentError(len(items), fmt.Errorf("encoding: %w", err))
		}
	}
	hdr := http.Header{}
	if s.auth != "" {
		hdr.Set("Authorization", s.auth)
	}
	rb, err := s.post(ctx, s.endpoint, "application/x-ndjson", body, hdr)
	if err != nil {
		return classify(len(items), fmt.Errorf("bulk: %w", err))
	}
	var r bulkReply
	if err := json.Unmarshal(rb, &r); err != nil {
		return fmt.Errorf("bulk: unreadable reply: %w", err)
	}
	if !r.Errors {
		return nil
	}
	if len(r.Items) != len(items) {
		return fmt.Errorf("bulk: %d results for %d items", len(r.Items), len(items))
	}
	se := &sendError{}
	var first string
	for i, res := range r.Items {
		var ir bulkItemResult
		for _, v := range res {
			ir = v
		}
		if ir.Status/100 == 2 {
			continue
		}
		if first == "" {
			first = fmt.Sprintf("item %d: status %d: %s", i, ir.Status, truncate(string(ir.Error), 300))
		}
		if ir.Status == http.StatusTooManyRequests || ir.Status >= 500 {
			se.retry = append(se.retry, i)
		} else {
			se.dropped++
		}
	}
	se.err = fmt.Errorf("bulk: %d to retry, %d refused; %s", len(se.retry), se.dropped, first)
	return se
}
