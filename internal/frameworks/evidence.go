package frameworks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/compliance"
)

// Evidence is everything a report is scored on. Each part is optional; a
// requirement nothing speaks to is reported as having no evidence.
type Evidence struct {
	Bench  []compliance.Report
	Alerts []Alert
	// AlertsGiven says an alert stream was supplied (even an empty one):
	// runtime detection was deployed and reporting.
	AlertsGiven bool
	Scans       []Scan
	FIM         []FIMRun
	// AuditEntries counts the server's audit log entries (from a server).
	AuditEntries int
	// Sources names where the evidence came from (files, server URL), for
	// the report's header.
	Sources []string
}

// Alert is the part of an alert the scoring reads: the agent's alert lines
// (`vigil agent` JSON) and the server's stored alerts share these fields.
type Alert struct {
	// Type is "alert" in the agent's output, which also carries other
	// records (events) that are skipped; empty in the server's alerts.
	Type       string    `json:"type,omitempty"`
	Time       time.Time `json:"time"`
	Host       string    `json:"host,omitempty"`
	Rule       string    `json:"rule"`
	Priority   string    `json:"priority"`
	Source     string    `json:"source"`
	Tactics    []string  `json:"mitre_tactics,omitempty"`
	Techniques []string  `json:"mitre_techniques,omitempty"`
	Output     string    `json:"output"`
	Count      int       `json:"count"`
	Responses  []string  `json:"responses,omitempty"`
	Container  string    `json:"container_name,omitempty"`
}

// Scan is a vulnerability scan's counts (vigil.scan/v1 summary, or the
// server's stored scan summary).
type Scan struct {
	Target   string    `json:"target"`
	Time     time.Time `json:"time,omitzero"`
	Critical int       `json:"critical"`
	High     int       `json:"high"`
	Medium   int       `json:"medium"`
	Low      int       `json:"low"`
	KEV      int       `json:"kev"`
	Total    int       `json:"total"`
	Secrets  int       `json:"secrets,omitempty"`
}

// FIMRun is one file integrity check's outcome.
type FIMRun struct {
	Host     string    `json:"host,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	Added    int       `json:"added"`
	Removed  int       `json:"removed"`
	Changed  int       `json:"changed"`
	Tampered bool      `json:"tampered"`
	Errors   int       `json:"errors"`
	// Sample names a few changed paths for the evidence text.
	Sample []string `json:"sample,omitempty"`
}

// ParseBench reads `vigil bench -f json` output: one compliance.Report, or
// a JSON array of them.
func ParseBench(b []byte) ([]compliance.Report, error) {
	b = bytes.TrimSpace(b)
	var reps []compliance.Report
	switch {
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &reps); err != nil {
			return nil, fmt.Errorf("not a JSON array of benchmark reports: %w", err)
		}
	case len(b) > 0 && b[0] == '{':
		var r compliance.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("not a benchmark report: %w", err)
		}
		reps = []compliance.Report{r}
	default:
		return nil, errors.New("not a benchmark report (want the JSON `vigil bench -f json` writes)")
	}
	for i, r := range reps {
		if r.Benchmark == "" && len(r.Results) == 0 {
			return nil, fmt.Errorf("report %d: no benchmark and no results", i)
		}
		for j, res := range r.Results {
			if res.Benchmark == "" {
				reps[i].Results[j].Benchmark = r.Benchmark
			}
			if res.ID == "" {
				return nil, fmt.Errorf("report %d: result %d: no id", i, j)
			}
			switch res.Status {
			case compliance.Pass, compliance.Fail, compliance.Warn, compliance.Manual, compliance.Error:
			default:
				return nil, fmt.Errorf("report %d: result %s: status %q is not pass, fail, warn, manual or error", i, res.ID, res.Status)
			}
		}
	}
	return reps, nil
}

// ParseAlerts reads alerts: JSON lines as `vigil agent` writes them, a JSON
// array, or the server's {"alerts": [...]} page.
func ParseAlerts(b []byte) ([]Alert, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] == '[' {
		var as []Alert
		if err := json.Unmarshal(b, &as); err != nil {
			return nil, fmt.Errorf("not a JSON array of alerts: %w", err)
		}
		return checkAlerts(as)
	}
	var page struct {
		Alerts *[]Alert `json:"alerts"`
	}
	if json.Unmarshal(b, &page) == nil && page.Alerts != nil {
		return checkAlerts(*page.Alerts)
	}
	var as []Alert
	dec := json.NewDecoder(bytes.NewReader(b))
	for line := 1; ; line++ {
		var a Alert
		err := dec.Decode(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("alert %d: %w", line, err)
		}
		as = append(as, a)
	}
	return checkAlerts(as)
}

func checkAlerts(as []Alert) ([]Alert, error) {
	out := as[:0]
	for i, a := range as {
		if a.Type != "" && a.Type != "alert" {
			continue // an event line of `vigil agent --emit events,alerts`
		}
		if a.Rule == "" {
			return nil, fmt.Errorf("alert %d: no rule", i+1)
		}
		if a.Count <= 0 {
			a.Count = 1
		}
		out = append(out, a)
	}
	return out, nil
}

// ParseScan reads a vigil.scan/v1 report (`vigil scan -f json`) or the
// server's {"scans": [...]} list.
func ParseScan(b []byte) ([]Scan, error) {
	var doc struct {
		Schema string `json:"schema"`
		Target struct {
			Name string `json:"name"`
		} `json:"target"`
		Summary *struct {
			Total    int `json:"total"`
			KEV      int `json:"kev"`
			Critical int `json:"critical"`
			High     int `json:"high"`
			Medium   int `json:"medium"`
			Low      int `json:"low"`
		} `json:"summary"`
		Scans *[]struct {
			Target  string    `json:"target"`
			Time    time.Time `json:"time"`
			Summary struct {
				Findings int `json:"findings"`
				Critical int `json:"critical"`
				High     int `json:"high"`
				Medium   int `json:"medium"`
				Low      int `json:"low"`
				KEV      int `json:"kev"`
			} `json:"summary"`
		} `json:"scans"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a scan report: %w", err)
	}
	if doc.Scans != nil {
		out := make([]Scan, 0, len(*doc.Scans))
		for _, s := range *doc.Scans {
			out = append(out, Scan{Target: s.Target, Time: s.Time, Total: s.Summary.Findings, Critical: s.Summary.Critical,
				High: s.Summary.High, Medium: s.Summary.Medium, Low: s.Summary.Low, KEV: s.Summary.KEV})
		}
		return out, nil
	}
	if doc.Schema != "vigil.scan/v1" {
		return nil, fmt.Errorf("schema %q, want vigil.scan/v1 (`vigil scan -f json`)", doc.Schema)
	}
	if doc.Summary == nil {
		return nil, errors.New("vigil.scan/v1 report without a summary")
	}
	s := doc.Summary
	return []Scan{{Target: doc.Target.Name, Total: s.Total, KEV: s.KEV, Critical: s.Critical, High: s.High, Medium: s.Medium, Low: s.Low}}, nil
}

// ParseFIM reads `vigil fim check -f json` output. It reads what every
// version of that report has: the added, removed and changed entries (lists
// or counts, at the top or under "summary"), whether the baseline was
// tampered with, and errors.
func ParseFIM(b []byte) (FIMRun, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return FIMRun{}, fmt.Errorf("not a FIM report (a JSON object): %w", err)
	}
	var run FIMRun
	_ = json.Unmarshal(top["host"], &run.Host)
	_ = json.Unmarshal(top["time"], &run.Time)
	var sum map[string]json.RawMessage
	_ = json.Unmarshal(top["summary"], &sum)
	found := false
	count := func(name string) int {
		for _, m := range []map[string]json.RawMessage{top, sum} {
			raw, ok := m[name]
			if !ok {
				continue
			}
			var n int
			if json.Unmarshal(raw, &n) == nil {
				found = true
				return n
			}
			var list []json.RawMessage
			if json.Unmarshal(raw, &list) == nil {
				found = true
				for _, it := range list {
					if len(run.Sample) >= 5 {
						break
					}
					var p struct {
						Path string `json:"path"`
					}
					var s string
					if json.Unmarshal(it, &p) == nil && p.Path != "" {
						run.Sample = append(run.Sample, p.Path)
					} else if json.Unmarshal(it, &s) == nil && s != "" {
						run.Sample = append(run.Sample, s)
					}
				}
				return len(list)
			}
		}
		return 0
	}
	run.Added, run.Removed, run.Changed, run.Errors = count("added"), count("removed"), count("changed"), count("errors")
	for _, k := range []string{"tampered", "baseline_tampered"} {
		for _, m := range []map[string]json.RawMessage{top, sum} {
			var t bool
			if json.Unmarshal(m[k], &t) == nil && t {
				run.Tampered = true
			}
		}
	}
	if !found && !run.Tampered {
		return run, errors.New("not a FIM report: no added, removed or changed entries")
	}
	sort.Strings(run.Sample)
	return run, nil
}

// alertFindingType gives the finding type an alert's source stands for.
func alertFindingType(a *Alert) string {
	switch strings.ToLower(a.Source) {
	case "fim":
		return FindingFIMChange
	case "drift":
		return FindingContainerDrift
	}
	return ""
}
