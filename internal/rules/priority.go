package rules

import (
	"fmt"
	"regexp"
	"strings"
)

// Priority is a rule's severity, most severe first (Falco's syslog-like
// scale).
type Priority int

// The priorities, in Falco's order.
const (
	Emergency Priority = iota
	Alert
	Critical
	Error
	Warning
	Notice
	Informational
	Debug
)

var priorityNames = [...]string{"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"}

// String is the priority's upper-case name: "CRITICAL", "WARNING", …
func (p Priority) String() string {
	if p >= 0 && int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return fmt.Sprintf("PRIORITY(%d)", int(p))
}

// MarshalText writes the priority's name.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a priority name (see ParsePriority).
func (p *Priority) UnmarshalText(b []byte) error {
	v, err := ParsePriority(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePriority reads a priority name as Falco does: case-insensitive,
// "INFO" meaning Informational.
func ParsePriority(s string) (Priority, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if u == "INFO" {
		return Informational, nil
	}
	for i, n := range priorityNames {
		if u == n {
			return Priority(i), nil
		}
	}
	return 0, fmt.Errorf("unknown priority %q (want one of emergency, alert, critical, error, warning, notice, informational, debug)", s)
}

// MITRE is the ATT&CK classification a rule's tags give it.
type MITRE struct {
	Tactics    []string `json:"tactics,omitempty"`    // "TA0002 Execution"
	Techniques []string `json:"techniques,omitempty"` // "T1059.004"
}

// tactics maps Falco's mitre_* tags and the tactic IDs to "TA#### Name".
var tactics = []struct{ tag, id, name string }{
	{"mitre_reconnaissance", "TA0043", "Reconnaissance"},
	{"mitre_resource_development", "TA0042", "Resource Development"},
	{"mitre_initial_access", "TA0001", "Initial Access"},
	{"mitre_execution", "TA0002", "Execution"},
	{"mitre_persistence", "TA0003", "Persistence"},
	{"mitre_privilege_escalation", "TA0004", "Privilege Escalation"},
	{"mitre_defense_evasion", "TA0005", "Defense Evasion"},
	{"mitre_credential_access", "TA0006", "Credential Access"},
	{"mitre_discovery", "TA0007", "Discovery"},
	{"mitre_lateral_movement", "TA0008", "Lateral Movement"},
	{"mitre_collection", "TA0009", "Collection"},
	{"mitre_exfiltration", "TA0010", "Exfiltration"},
	{"mitre_command_and_control", "TA0011", "Command and Control"},
	{"mitre_impact", "TA0040", "Impact"},
}

var techniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)

// mitreOf extracts tactics (from mitre_* and TA#### tags) and techniques
// (T####, T####.###) from tags, each once, in tag order.
func mitreOf(tags []string) MITRE {
	var m MITRE
	seen := map[string]bool{}
	for _, t := range tags {
		for _, ta := range tactics {
			if strings.EqualFold(t, ta.tag) || strings.EqualFold(t, ta.id) {
				s := ta.id + " " + ta.name
				if !seen[s] {
					seen[s] = true
					m.Tactics = append(m.Tactics, s)
				}
			}
		}
		if techniqueRE.MatchString(t) && !seen[t] {
			seen[t] = true
			m.Techniques = append(m.Techniques, t)
		}
	}
	return m
}
