package response

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Policy says, per workload class, which actions an alert calls for and
// whether they are enforced. A class without an entry of its own follows
// Default. It is loaded from YAML:
//
//	default:
//	  mode: monitor
//	  actions:
//	    - min_priority: CRITICAL
//	      do: [freeze]
//	    - profile: true
//	      do: [kill]
//	classes:
//	  registry.example.com/shop/web:
//	    mode: enforce
//	    actions:
//	      - tags: [mitre_impact]
//	        do: [isolate, freeze]
type Policy struct {
	Default ClassPolicy            `yaml:"default"`
	Classes map[string]ClassPolicy `yaml:"classes,omitempty"`
}

// ClassPolicy is the policy of one workload class.
type ClassPolicy struct {
	// Mode is "monitor" (record what would be done; the default) or
	// "enforce".
	Mode    string    `yaml:"mode"`
	Actions []Trigger `yaml:"actions,omitempty"`
}

// Trigger maps alerts to actions. A rule alert matches when it meets every
// criterion the trigger sets: at least MinPriority, one of Rules, one of
// Tags. A Profile trigger matches profile deviations blocked in protect
// mode, and only those.
type Trigger struct {
	// MinPriority is a Falco priority (EMERGENCY, ALERT, CRITICAL, ERROR,
	// WARNING, NOTICE, INFORMATIONAL, DEBUG), case-insensitive.
	MinPriority string   `yaml:"min_priority,omitempty"`
	Rules       []string `yaml:"rules,omitempty"`
	Tags        []string `yaml:"tags,omitempty"`
	Profile     bool     `yaml:"profile,omitempty"`
	// Do lists the actions: kill, freeze, isolate, stop.
	Do []Action `yaml:"do"`
}

// priorities are Falco's, most severe first; the index is the severity rank.
var priorities = []string{"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"}

// priorityRank returns the rank of p (0 is EMERGENCY), or -1. "INFO" is
// Falco's alias of INFORMATIONAL.
func priorityRank(p string) int {
	p = strings.TrimSpace(p)
	if strings.EqualFold(p, "INFO") {
		p = "INFORMATIONAL"
	}
	return slices.IndexFunc(priorities, func(q string) bool { return strings.EqualFold(p, q) })
}

// maxPolicySize bounds a policy file.
const maxPolicySize = 1 << 20

// LoadPolicy reads a YAML policy. Unknown keys, modes, priorities and
// actions are errors naming the class and trigger; so is a trigger that sets
// no criterion (it would match every alert).
func LoadPolicy(b []byte) (Policy, error) {
	if len(b) > maxPolicySize {
		return Policy{}, fmt.Errorf("response policy: %d bytes, more than the %d allowed", len(b), maxPolicySize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return Policy{}, errors.New("response policy: empty document")
		}
		return Policy{}, fmt.Errorf("response policy: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Policy{}, errors.New("response policy: more than one YAML document")
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Validate checks modes, priorities and actions.
func (p Policy) Validate() error {
	if err := p.Default.validate(); err != nil {
		return fmt.Errorf("response policy: default: %w", err)
	}
	for name, c := range p.Classes {
		if strings.TrimSpace(name) == "" {
			return errors.New("response policy: a class has an empty name")
		}
		if err := c.validate(); err != nil {
			return fmt.Errorf("response policy: class %q: %w", name, err)
		}
	}
	return nil
}

func (c ClassPolicy) validate() error {
	switch c.Mode {
	case "", ModeMonitor, ModeEnforce:
	default:
		return fmt.Errorf("mode %q: want %s or %s", c.Mode, ModeMonitor, ModeEnforce)
	}
	for i, t := range c.Actions {
		if t.MinPriority != "" && priorityRank(t.MinPriority) < 0 {
			return fmt.Errorf("action %d: unknown priority %q (want one of %s)", i+1, t.MinPriority, strings.Join(priorities, ", "))
		}
		if t.Profile && (t.MinPriority != "" || len(t.Rules) > 0 || len(t.Tags) > 0) {
			return fmt.Errorf("action %d: a profile trigger takes no min_priority, rules or tags", i+1)
		}
		if !t.Profile && t.MinPriority == "" && len(t.Rules) == 0 && len(t.Tags) == 0 {
			return fmt.Errorf("action %d: no min_priority, rules, tags or profile: it would match every alert", i+1)
		}
		if len(t.Do) == 0 {
			return fmt.Errorf("action %d: nothing to do", i+1)
		}
		for _, a := range t.Do {
			switch a {
			case Kill, Freeze, Isolate, Stop:
			default:
				return fmt.Errorf("action %d: unknown action %q (want kill, freeze, isolate or stop)", i+1, a)
			}
		}
	}
	return nil
}

// DefaultPolicy is monitor-only everywhere: it records that a container
// would be frozen on a CRITICAL (or worse) alert and that a process would be
// killed on a profile deviation blocked in protect mode, and does neither.
func DefaultPolicy() Policy {
	return Policy{Default: ClassPolicy{
		Mode: ModeMonitor,
		Actions: []Trigger{
			{MinPriority: "CRITICAL", Do: []Action{Freeze}},
			{Profile: true, Do: []Action{Kill}},
		},
	}}
}

// Decide returns the actions an alert calls for in class, in the order the
// matching triggers list them without repeats, and whether they are to be
// enforced. rule, priority and tags describe a rule alert; profileBlock
// true means a profile deviation blocked in protect mode instead. An
// unknown priority meets no min_priority.
func (p Policy) Decide(class, rule, priority string, tags []string, profileBlock bool) (actions []Action, enforce bool) {
	c, ok := p.Classes[class]
	if !ok {
		c = p.Default
	}
	rank := -1
	for _, t := range c.Actions {
		if !t.matches(rule, priority, tags, profileBlock, &rank) {
			continue
		}
		for _, a := range t.Do {
			if !slices.Contains(actions, a) {
				actions = append(actions, a)
			}
		}
	}
	return actions, c.Mode == ModeEnforce
}

// matches reports whether t matches the alert; *rank caches the alert's
// priority rank (-1: not computed yet).
func (t Trigger) matches(rule, priority string, tags []string, profileBlock bool, rank *int) bool {
	if t.Profile || profileBlock {
		return t.Profile && profileBlock
	}
	if t.MinPriority != "" {
		if *rank == -1 {
			if *rank = priorityRank(priority); *rank < 0 {
				*rank = len(priorities) // below every priority
			}
		}
		if *rank > priorityRank(t.MinPriority) {
			return false
		}
	}
	if len(t.Rules) > 0 && !slices.Contains(t.Rules, rule) {
		return false
	}
	if len(t.Tags) > 0 && !slices.ContainsFunc(t.Tags, func(s string) bool { return slices.Contains(tags, s) }) {
		return false
	}
	return true
}
