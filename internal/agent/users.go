package agent

import (
	"github.com/vigil-cwpp/vigil/internal/event"
)

// nameUsers fills the user, group and login user names of e's process and
// its parent, each from its own mount namespace's /etc/passwd and
// /etc/group (workload.Names caches them per namespace, bounded). The
// parent, most often in the same namespace and still alive, serves to
// re-read changed files when the process is already gone.
func (c *workloadCache) nameUsers(e *event.Event) {
	if e.Parent == nil {
		c.names.Fill(&e.Process)
		return
	}
	c.names.Fill(&e.Process, e.Parent.PID)
	c.names.Fill(e.Parent)
}
