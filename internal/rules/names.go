package rules

import (
	"slices"
	"strings"
)

// nameFields are the fields whose values are DNS names of a connection's
// ends, which the agent has to resolve to know them (as Falco does).
var nameFields = map[string]bool{"fd.sip.name": true, "fd.cip.name": true, "fd.lip.name": true, "fd.rip.name": true}

// noteNames records the names a condition compares a name field with.
func (cp *compiler) noteNames(field string, vals []string) {
	if !nameFields[field] {
		return
	}
	if cp.names == nil {
		cp.names = map[string]bool{}
	}
	for _, v := range vals {
		v = strings.TrimSuffix(strings.ToLower(unquoteItem(v)), ".")
		if v != "" && !strings.ContainsAny(v, " *?") {
			cp.names[v] = true
		}
	}
}

// WatchedNames lists the DNS names the rules compare fd.sip.name,
// fd.rip.name and the like with, sorted. The agent resolves them
// periodically and names a connection's remote address with them.
func (rs *Ruleset) WatchedNames() []string { return slices.Clone(rs.watched) }

func (cp *compiler) watched() []string {
	out := make([]string, 0, len(cp.names))
	for n := range cp.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
