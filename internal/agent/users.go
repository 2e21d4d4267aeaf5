package agent

import (
	"github.com/vigil-cwpp/vigil/internal/event"
)

// nameUsers fills the user, group and login user names of e's process and
// its parent, each from its own mount namespace's /etc/passwd and
// /etc/group (workload.Names caches them per namespace, bounded).
func (c *workloadCache) nameUsers(e *event.Event) {
	c.names.Fill(&e.Process)
	if e.Parent != nil {
		c.names.Fill(e.Parent)
	}
}
