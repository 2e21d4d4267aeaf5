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
	l2, err := r.netdevTables(c)
	if err != nil {
		return fmt.Errorf("%s container %s: %w", verb, t.ContainerID, err)
	}
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: IsolateTable}
	if !on {
		if !exists {
			return fmt.Errorf("unisolate container %s: it is not isolated (no table %s)", t.ContainerID, IsolateTable)
		}
		c.DelTable(table)
		if l2 {
			c.DelTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: IsolateTable})
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("unisolate container %s: deleting table %s: %w", t.ContainerID, IsolateTable, err)
		}
		return nil
	}
	devs, err := netDevices(filepath.Join(r.o.Proc, strconv.Itoa(int(pid)), "net", "dev"))
	if err != nil {
		return fmt.Errorf("isolate container %s: %w", t.ContainerID, err)
	}
	addInet := func() {
		if exists {
			c.DelTable(table) // rebuilt below, in the same transaction
		}
		addInetTable(c, table)
	}
	addInet()
	if l2 {
		c.DelTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: IsolateTable})
	}
	addNetdevTable(c, devs)
	if err := c.Flush(); err != nil {
		// Without the netdev hooks (an older kernel: egress is 5.16+) the
		// IP layer is still cut off; raw packet sockets are not.
		r.o.Logger.Warn("response: isolating at the device layer failed; isolating at the IP layer only",
			"container", t.ContainerID, "err", err)
		addInet()
		if err := c.Flush(); err != nil {
			return fmt.Errorf("isolate container %s: adding table %s: %w", t.ContainerID, IsolateTable, err)
		}
	}
	return nil
}

// netdevTables reports whether the namespace has a netdev table of ours.
func (r *Responder) netdevTables(c *nftables.Conn) (bool, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return false, fmt.Errorf("listing nftables netdev tables: %w", err)
	}
	for _, tb := range tables {
		if tb.Name == IsolateTable {
			return true, nil
		}
	}
	return false, nil
}

// addInetTable queues the IP-layer table: input and output chains that
// drop everything but loopback, and a forward chain that drops everything.
func addInetTable(c *nftables.Conn, table *nftables.Table) {
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
}

// addNetdevTable queues the device-layer table: ingress and egress chains
// with policy drop on every interface but lo. They stop what the IP hooks
// do not see: ARP and raw packet sockets (CAP_NET_RAW, which Docker grants
// by default).
func addNetdevTable(c *nftables.Conn, devs []string) {
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: IsolateTable})
	drop := nftables.ChainPolicyDrop
	for _, d := range devs {
		for _, h := range []struct {
			prefix string
			hook   *nftables.ChainHook
		}{{"in_", nftables.ChainHookIngress}, {"out_", nftables.ChainHookEgress}} {
			c.AddChain(&nftables.Chain{
				Name:     h.prefix + d,
				Table:    table,
				Type:     nftables.ChainTypeFilter,
				Hooknum:  h.hook,
				Priority: nftables.ChainPriorityRef(-500),
				Device:   d,
				Policy:   &drop,
			})
		}
	}
}

// netDevices lists the interfaces of a network namespace but lo, from a
// /proc/PID/net/dev file.
func netDevices(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	return parseNetDev(b), nil
}

// parseNetDev reads interface names from the text of /proc/PID/net/dev:
// two header lines, then "name: counters…" per interface.
func parseNetDev(b []byte) []string {
	var out []string
	for l := range strings.SplitSeq(string(b), "\n") {
		name, _, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if name == "" || name == "lo" || strings.ContainsAny(name, " |") || len(name) >= unix.IFNAMSIZ {
			continue
		}
		out = append(out, name)
	}
	return out
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
