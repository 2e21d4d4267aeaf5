// Package event is the one event vocabulary every runtime stage speaks: the
// sensor produces events, workload enrichment fills in who they belong to,
// rules, profiles and FIM read them, exporters map them. Field names follow
// OCSF (Process Activity 1007, File System Activity 1001, Network Activity
// 4001) so an export is a mapping, not a rewrite. It does no I/O.
package event

import (
	"net/netip"
	"time"
)

// Kind is what happened.
type Kind uint16

// The event kinds. Their names are the JSON "type" values.
const (
	KindUnknown Kind = iota
	ProcessExec
	ProcessFork
	ProcessExit
	FileOpen
	FileUnlink
	FileRename
	FileLink
	FileSymlink
	FileChmod
	FileChown
	FileMkdir
	NetSocket
	NetConnect
	NetAccept
	NetBind
	NetListen
	NetDNS
	PrivSetuid
	PrivSetgid
	PrivCapset
	Ptrace
	ModuleLoad
	Mount
	Umount
	Unshare
	Setns
	MemfdCreate
	BPF
	// FDDup is dup/dup2/dup3: Detail.Request is the old fd, Ret the new
	// one, Net the old fd's socket when it is one (its family, type and
	// endpoints as the kernel holds them).
	FDDup
	kindCount
)

var kindNames = [kindCount]string{
	"unknown", "process_exec", "process_fork", "process_exit",
	"file_open", "file_unlink", "file_rename", "file_link", "file_symlink", "file_chmod", "file_chown", "file_mkdir",
	"net_socket", "net_connect", "net_accept", "net_bind", "net_listen", "net_dns",
	"priv_setuid", "priv_setgid", "priv_capset", "ptrace", "module_load", "mount", "umount", "unshare", "setns",
	"memfd_create", "bpf", "fd_dup",
}

func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText writes the kind's name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if n == string(b) {
			*k = Kind(i)
			return nil
		}
	}
	*k = KindUnknown
	return nil
}

// Kinds lists every known kind except KindUnknown.
func Kinds() []Kind {
	out := make([]Kind, 0, kindCount-1)
	for k := ProcessExec; k < kindCount; k++ {
		out = append(out, k)
	}
	return out
}

// Event is one observed action.
type Event struct {
	Time time.Time `json:"time"`
	Type Kind      `json:"type"`
	// Syscall names the system call that produced the event (openat2,
	// renameat, dup2, execve, …); empty for scheduler events (fork, exit).
	Syscall string `json:"syscall,omitempty"`
	// Process is the actor.
	Process Process `json:"process"`
	// Parent is the actor's parent, from the process cache.
	Parent *Process `json:"parent_process,omitempty"`
	// Ancestors are the parent's parents, nearest first, up to the session
	// leader or init; from the process cache.
	Ancestors []Ancestor `json:"ancestors,omitempty"`
	File      *File      `json:"file,omitempty"`
	Net       *Net       `json:"connection_info,omitempty"`
	Exit      *Exit      `json:"exit,omitempty"`
	// Target is the other process of ptrace, kill and similar.
	Target *Process `json:"target_process,omitempty"`
	// Syscall details for privilege and kernel events.
	Detail *Detail `json:"detail,omitempty"`
	// Ret is the syscall's return value when the event is taken at exit
	// (negative errno on failure).
	Ret int64 `json:"ret"`
	// Blocked says that the sensor's in-kernel exec policy killed the
	// process (process_exec only).
	Blocked  bool      `json:"blocked,omitempty"`
	Workload *Workload `json:"workload,omitempty"`
}

// Process is a process as the sensor saw it.
type Process struct {
	PID      int32    `json:"pid"`
	TID      int32    `json:"tid,omitempty"`
	PPID     int32    `json:"ppid,omitempty"`
	Name     string   `json:"name"`           // comm
	Exe      string   `json:"exe,omitempty"`  // executable path
	Args     []string `json:"args,omitempty"` // argv
	CmdLine  string   `json:"cmd_line,omitempty"`
	Cwd      string   `json:"cwd,omitempty"`
	Env      []string `json:"env,omitempty"`
	UID      uint32   `json:"uid"`
	GID      uint32   `json:"gid"`
	EUID     uint32   `json:"euid"`
	EGID     uint32   `json:"egid"`
	LoginUID uint32   `json:"auid"`
	CapEff   uint64   `json:"cap_effective,omitempty"`
	// CapPrm is the permitted capability set, taken at exec.
	CapPrm uint64 `json:"cap_permitted,omitempty"`
	// VPID is the pid in the process's own pid namespace (what getpid
	// returns in a container); equal to PID on the host.
	VPID      int32     `json:"vpid,omitempty"`
	TTY       string    `json:"tty,omitempty"`    // controlling terminal name, "pts/0"
	TTYNr     uint32    `json:"tty_nr,omitempty"` // its device number as /proc/PID/stat's tty_nr; 0 without one
	SID       int32     `json:"sid,omitempty"`    // session ID (the session leader's pid)
	PGID      int32     `json:"pgid,omitempty"`   // process group ID
	User      string    `json:"user,omitempty"`   // name of UID in the process's own /etc/passwd
	Group     string    `json:"group,omitempty"`  // name of GID in its /etc/group
	LoginUser string    `json:"login_user,omitempty"`
	ExeInode  uint64    `json:"exe_inode,omitempty"`
	ExeUpper  bool      `json:"exe_upper_layer,omitempty"` // executable lives in an overlayfs upper layer
	ExeMemfd  bool      `json:"exe_memfd,omitempty"`       // executable is a memfd or a deleted file
	StartTime time.Time `json:"start_time,omitzero"`
	CgroupID  uint64    `json:"cgroup_id,omitempty"`
	// CgroupName is the leaf name of the process's cgroup (in the cpuset
	// hierarchy on cgroup v1, the unified one on v2): "<64 hex>" or
	// "docker-<id>.scope" for a Docker container, so that user space can
	// name the container of a process that has already exited.
	CgroupName string `json:"cgroup_name,omitempty"`
	MntNS      uint32 `json:"mnt_ns,omitempty"`
	PidNS      uint32 `json:"pid_ns,omitempty"`
	NetNS      uint32 `json:"net_ns,omitempty"`
}

// Ancestor is a process up the parent chain.
type Ancestor struct {
	PID  int32    `json:"pid"`
	Name string   `json:"name"`
	Exe  string   `json:"exe,omitempty"`
	Args []string `json:"args,omitempty"`
}

// File is the object of a file event.
type File struct {
	Path string `json:"path"`
	// NewPath is the destination of rename, link and symlink.
	NewPath string `json:"new_path,omitempty"`
	// Flags are open(2) flags.
	Flags uint32 `json:"flags,omitempty"`
	Mode  uint32 `json:"mode,omitempty"`
	UID   uint32 `json:"uid,omitempty"`
	GID   uint32 `json:"gid,omitempty"`
}

// Net is the object of a network event.
type Net struct {
	Family   string         `json:"family"` // inet, inet6, unix, packet, netlink
	Type     string         `json:"type,omitempty"`
	Protocol int            `json:"protocol,omitempty"`
	Src      netip.AddrPort `json:"src_endpoint,omitzero"`
	Dst      netip.AddrPort `json:"dst_endpoint,omitzero"`
	UnixPath string         `json:"unix_path,omitempty"`
	Backlog  int            `json:"backlog,omitempty"`
	// Names are DNS names the process resolved to Dst, where seen.
	Names []string `json:"names,omitempty"`
}

// Exit is how a process ended.
type Exit struct {
	Code   int `json:"code"`
	Signal int `json:"signal,omitempty"`
}

// Detail carries the arguments of privilege and kernel events.
type Detail struct {
	// IDs are the uid/gid arguments of set*id calls.
	IDs []uint32 `json:"ids,omitempty"`
	// Request is the ptrace request, the bpf command, the unshare/setns
	// flags or the mount flags.
	Request uint64 `json:"request,omitempty"`
	// Name is the memfd name, the module parameters, the mount source.
	Name   string `json:"name,omitempty"`
	Target string `json:"target,omitempty"` // mount point or umount target
	// FSType is mount's file system type argument ("proc", "overlay").
	FSType string `json:"fstype,omitempty"`
	// The capability sets capset asked for.
	CapEffective   uint64 `json:"cap_effective,omitempty"`
	CapPermitted   uint64 `json:"cap_permitted,omitempty"`
	CapInheritable uint64 `json:"cap_inheritable,omitempty"`
}

// Workload is who the event belongs to.
type Workload struct {
	Host          string            `json:"host"`
	ContainerID   string            `json:"container_id,omitempty"`
	ContainerName string            `json:"container_name,omitempty"`
	Runtime       string            `json:"runtime,omitempty"` // docker, containerd, cri-o
	Image         string            `json:"image,omitempty"`
	ImageDigest   string            `json:"image_digest,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Privileged    bool              `json:"privileged,omitempty"`
	NetworkMode   string            `json:"network_mode,omitempty"`
	Mounts        []string          `json:"mounts,omitempty"`
	PodName       string            `json:"pod_name,omitempty"`
	PodNamespace  string            `json:"pod_namespace,omitempty"`
	PodUID        string            `json:"pod_uid,omitempty"`
	PodLabels     map[string]string `json:"pod_labels,omitempty"`
	// StartedAt is when the container started.
	StartedAt time.Time `json:"started_at,omitzero"`
}
