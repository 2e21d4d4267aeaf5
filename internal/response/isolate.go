package response

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// IsolateTable is the nftables table (family inet) isolate creates in the
// container's network namespace and unisolate deletes.
const IsolateTable = "vigil_isolate"

// isolate (on true) drops every packet of the target's network namespace
// except on the loopback interface, with a table of its own inside that
// namespace; on false it deletes the table. It refuses a namespace shared
// with the host (a --network host container): that would isolate the host.
func (r *Responder) isolate(ctx context.Context, t Target, on bool) error {
	verb := "unisolate"
	if on {
		verb = "isolate"
	}
	pid, _, err := r.pidOf(ctx, t)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	nsPath := filepath.Join(r.o.Proc, strconv.Itoa(int(pid)), "ns", "net")
	ns, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("%s container %s: opening its network namespace: %w", verb, t.ContainerID, err)
	}
	defer ns.Close()
	if err := r.notHostNetNS(ns, t); err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		return fmt.Errorf("%s container %s: nftables: %w", verb, t.ContainerID, err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("%s container %s: listing nftables tables: %w", verb, t.ContainerID, err)
	}
	exists := false
	for _, tb := range tables {
		if tb.Name == IsolateTable {
			exists = true
		}
	}
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: IsolateTable}
	if !on {
		if !exists {
			return fmt.Errorf("unisolate container %s: it is not isolated (no table %s)", t.ContainerID, IsolateTable)
		}
		c.DelTable(table)
		if err := c.Flush(); err != nil {
			return fmt.Errorf("unisolate container %s: deleting table %s: %w", t.ContainerID, IsolateTable, err)
		}
		return nil
	}
	if exists {
		c.DelTable(table) // rebuilt below, in the same transaction
	}
	c.AddTable(table)
	drop := nftables.ChainPolicyDrop
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
		key  expr.MetaKey
	}{
		{"input", nftables.ChainHookInput, expr.MetaKeyIIFNAME},
		{"output", nftables.ChainHookOutput, expr.MetaKeyOIFNAME},
		{"forward", nftables.ChainHookForward, 0},
	} {
		ch := c.AddChain(&nftables.Chain{
			Name:     h.name,
			Table:    table,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  h.hook,
			Priority: nftables.ChainPriorityRef(-200), // before the usual filter chains
			Policy:   &drop,
		})
		if h.key == 0 {
			continue // forward: policy drop, nothing accepted
		}
		c.AddRule(&nftables.Rule{
			Table: table,
			Chain: ch,
			Exprs: []expr.Any{
				&expr.Meta{Key: h.key, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
				&expr.Verdict{Kind: expr.VerdictAccept},
			},
		})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("isolate container %s: adding table %s: %w", t.ContainerID, IsolateTable, err)
	}
	return nil
}

// ifname is an interface name as the kernel compares it (IFNAMSIZ bytes).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// notHostNetNS refuses a network namespace that is the host's (that of
// <proc>/1) or this process's own.
func (r *Responder) notHostNetNS(ns *os.File, t Target) error {
	fi, err := ns.Stat()
	if err != nil {
		return fmt.Errorf("container %s: %w", t.ContainerID, err)
	}
	// PID 1 may be out of reach (a ptrace access check: on some VMs it holds
	// capabilities root lacks); kthreadd, PID 2, is in the host's namespace
	// too and always readable.
	seenHost := false
	var lastErr error
	for _, other := range []string{filepath.Join(r.o.Proc, "1", "ns", "net"), filepath.Join(r.o.Proc, "2", "ns", "net"), "/proc/self/ns/net"} {
		oi, err := os.Stat(other)
		if err != nil {
			lastErr = err
			continue
		}
		if !strings.HasPrefix(other, "/proc/self") {
			seenHost = true
		}
		if sameFile(fi, oi) {
			return fmt.Errorf("container %s shares the host's network namespace (host network): refusing to isolate the host", t.ContainerID)
		}
	}
	if !seenHost {
		return fmt.Errorf("container %s: cannot tell its network namespace from the host's: %w", t.ContainerID, lastErr)
	}
	return nil
}

func sameFile(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
