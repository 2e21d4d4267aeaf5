// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Vigil's eBPF programs. Every program writes one record to the ring buffer
// "events": a fixed header (struct hdr) followed by a kind-specific payload
// (struct exec_rec, struct fork_rec, struct exit_rec or struct sys_rec).
// The Go side (record.go) decodes the same layout; keep them in step.
//
// Syscall events are taken in two halves: the sys_enter program copies the
// arguments into the per-thread "pending" map, the sys_exit program adds the
// return value and submits the record. Enter-side filtering (the open,
// socket and dup filters) means the exit side only emits what the enter
// side kept.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// Kinds: the values of event.Kind in internal/event/event.go.
enum {
	K_EXEC = 1,
	K_FORK = 2,
	K_EXIT = 3,
	K_OPEN = 4,
	K_UNLINK = 5,
	K_RENAME = 6,
	K_LINK = 7,
	K_SYMLINK = 8,
	K_CHMOD = 9,
	K_CHOWN = 10,
	K_MKDIR = 11,
	K_SOCKET = 12,
	K_CONNECT = 13,
	K_ACCEPT = 14,
	K_BIND = 15,
	K_LISTEN = 16,
	K_SETUID = 18,
	K_SETGID = 19,
	K_CAPSET = 20,
	K_PTRACE = 21,
	K_MODULE = 22,
	K_MOUNT = 23,
	K_UMOUNT = 24,
	K_UNSHARE = 25,
	K_SETNS = 26,
	K_MEMFD = 27,
	K_BPF = 28,
	K_DUP = 29,
};

#define COMM_LEN 16
#define PATH_LEN 256
#define ARGS_LEN 1024
#define ADDR_LEN 112
#define PREFIX_LEN 64
#define TTY_LEN 32
#define CGROUP_LEN 128

// hdr is 88 bytes; every field is naturally aligned. nr is the x86_64
// syscall number of syscall events and of exec (execve or execveat), 0
// for the scheduler's fork and exit.
struct hdr {
	u16 kind;
	u16 nr;
	u32 _pad1;
	u64 ts;
	u32 pid, tid, ppid;
	u32 uid, gid, euid, egid, loginuid;
	u64 cgroup_id;
	u32 mnt_ns, pid_ns, net_ns, _pad2;
	char comm[COMM_LEN];
};

// exec_rec flags.
#define EXE_MEMFD 1   // the executable is a memfd or has no links left
#define EXE_UPPER 2   // the executable lives in an overlayfs upper layer
#define EXE_BLOCKED 4 // the exec policy killed the process

struct exec_rec {
	struct hdr h;
	u64 exe_ino;
	u64 cap_eff;
	u64 start_ns; // the process's start, ns since boot (as /proc/PID/stat's starttime)
	u64 cap_prm;
	u32 filename_len;
	u32 args_len;
	u32 tty_nr; // as /proc/PID/stat's tty_nr
	u32 sid, pgid;
	u32 flags;
	u32 vpid;               // the pid in the process's own pid namespace
	u32 _pad;
	char tty[TTY_LEN];       // the controlling tty's name ("pts3", "tty1")
	char cgroup[CGROUP_LEN]; // the leaf name of the process's cgroup
	char filename[PATH_LEN];
	char args[ARGS_LEN];
};

struct fork_rec {
	struct hdr h;
	u32 child_pid;
	u32 child_tid;
	u64 start_ns; // the child's start, ns since boot
	u32 child_vpid; // the child's pid in its own pid namespace
	u32 _pad;
};

struct exit_rec {
	struct hdr h;
	u32 exit_code;
	u32 _pad;
};

// sys_rec carries every syscall event: arg holds the integer arguments,
// addr a raw sockaddr copy (or, for dup, a struct dup_sock), str1/str2
// NUL-terminated user strings.
struct sys_rec {
	struct hdr h;
	s64 ret;
	u64 arg[4];
	u32 addr_len;
	u32 nargs; // how many of arg[] the syscall has (set*id)
	u8 addr[ADDR_LEN];
	char str1[PATH_LEN];
	char str2[PATH_LEN];
};

// dup_sock is what dup events carry in sys_rec.addr: the old fd's socket
// as the kernel holds it. Ports and addresses are in network byte order.
struct dup_sock {
	u16 family, type, protocol, _pad;
	u16 sport, dport;
	u32 _pad2;
	u8 saddr[16];
	u8 daddr[16];
};

// local_ep is what connect and accept records carry in sys_rec.str1: the
// process's own end of the connection, read from the socket at the
// syscall's exit. family 0: not known. The port is in network byte order.
struct local_ep {
	u16 family, port;
	u32 _pad;
	u8 addr[16];
};

struct prefix_key {
	u32 prefixlen;
	char data[PREFIX_LEN];
};

// Exec policy flags, per mount namespace (see Sensor.SetExecPolicy).
#define POL_KILL_UPPER 1
#define POL_KILL_MEMFD 2
#define POL_ALLOW_ONLY 4 // only executables in exec_deny with value ALLOWED may run

// exec_deny values.
#define EXEC_DENIED 1
#define EXEC_ALLOWED 2

struct deny_key {
	u32 mnt_ns;
	u32 _pad;
	u64 ino;
};

// Threads inside execveat, by tid: sched_process_exec tells execveat from
// execve with them (the syscall number in the task's registers says
// execve for both by then).
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} execveat_tids SEC(".maps");

// Set by the loader: 1 when the process's cgroup name is taken from the
// cgroup v2 hierarchy, 0 for the cpuset v1 hierarchy.
volatile const u32 cgroup_v2 = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct sys_rec);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sys_rec);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefix_key);
	__type(value, u8);
} sensitive SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u32);
} exec_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct deny_key);
	__type(value, u8);
} exec_deny SEC(".maps");

static __always_inline void count_drop(void)
{
	u32 zero = 0;
	u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		*n += 1;
}

static __always_inline void fill_hdr(struct hdr *h, u16 kind, u16 nr)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	u64 pt = bpf_get_current_pid_tgid();
	u64 ug = bpf_get_current_uid_gid();

	h->kind = kind;
	h->nr = nr;
	h->_pad1 = 0;
	h->_pad2 = 0;
	h->ts = bpf_ktime_get_boot_ns();
	h->pid = pt >> 32;
	h->tid = (u32)pt;
	h->ppid = BPF_CORE_READ(t, real_parent, tgid);
	h->uid = (u32)ug;
	h->gid = ug >> 32;
	h->euid = BPF_CORE_READ(t, cred, euid.val);
	h->egid = BPF_CORE_READ(t, cred, egid.val);
	h->loginuid = (u32)-1;
	if (bpf_core_field_exists(t->loginuid))
		h->loginuid = BPF_CORE_READ(t, loginuid.val);
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->mnt_ns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	h->pid_ns = BPF_CORE_READ(t, nsproxy, pid_ns_for_children, ns.inum);
	h->net_ns = BPF_CORE_READ(t, nsproxy, net_ns, ns.inum);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

// task_vpid is t's pid as its own pid namespace numbers it (what getpid
// returns inside a container): thread_pid->numbers[thread_pid->level].
static __always_inline u32 task_vpid(struct task_struct *t)
{
	struct pid *p = BPF_CORE_READ(t, thread_pid);
	if (!p)
		return 0;
	u32 level = BPF_CORE_READ(p, level);
	struct upid up = {};
	BPF_CORE_READ_INTO(&up, p, numbers[level]);
	return up.nr;
}

#define OVERLAYFS_SUPER_MAGIC 0x794c7630

// exe_flags says whether the executable is a memfd or a deleted file, and
// whether it lives in an overlayfs upper layer (the overlay inode has an
// upper dentry: the file was written or copied up in the container).
static __always_inline u32 exe_flags(struct file *f)
{
	u32 flags = 0;
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	if (!ino)
		return 0;
	if (BPF_CORE_READ(ino, __i_nlink) == 0)
		flags |= EXE_MEMFD;
	char name[8] = {};
	bpf_probe_read_kernel(name, 6, BPF_CORE_READ(f, f_path.dentry, d_name.name));
	if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':')
		flags |= EXE_MEMFD;
	if (BPF_CORE_READ(ino, i_sb, s_magic) == OVERLAYFS_SUPER_MAGIC &&
	    bpf_core_type_exists(struct ovl_inode)) {
		struct ovl_inode *oi = (void *)ino - bpf_core_field_offset(struct ovl_inode, vfs_inode);
		if (BPF_CORE_READ(oi, __upperdentry))
			flags |= EXE_UPPER;
	}
	return flags;
}

// fill_tty writes the controlling tty's name and its tty_nr.
static __always_inline void fill_tty(struct exec_rec *r, struct task_struct *t)
{
	struct tty_struct *tty = BPF_CORE_READ(t, signal, tty);
	r->tty_nr = 0;
	r->tty[0] = 0;
	if (!tty)
		return;
	u32 major = BPF_CORE_READ(tty, driver, major);
	u32 minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
	r->tty_nr = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
	bpf_probe_read_kernel_str(r->tty, sizeof(r->tty), &tty->name);
}

static __always_inline void fill_cgroup(struct exec_rec *r, struct task_struct *t)
{
	struct cgroup *cg;
	if (cgroup_v2)
		cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	else
		cg = BPF_CORE_READ(t, cgroups, subsys[bpf_core_enum_value(enum cgroup_subsys_id, cpuset_cgrp_id)], cgroup);
	r->cgroup[0] = 0;
	if (cg)
		bpf_probe_read_kernel_str(r->cgroup, sizeof(r->cgroup), BPF_CORE_READ(cg, kn, name));
}

#define NR_EXECVE 59
#define NR_EXECVEAT 322

SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(void *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u8 one = 1;
	bpf_map_update_elem(&execveat_tids, &tid, &one, BPF_ANY);
	return 0;
}

// A failed execveat: forget the thread.
SEC("tracepoint/syscalls/sys_exit_execveat")
int exit_execveat(void *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&execveat_tids, &tid);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct exec_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop();
		return 0;
	}
	// execve or execveat: the syscall this exec returns from. old_pid is
	// the thread's id before exec made it the leader.
	u32 old = ctx->old_pid;
	u16 nr = NR_EXECVE;
	if (bpf_map_lookup_elem(&execveat_tids, &old)) {
		nr = NR_EXECVEAT;
		bpf_map_delete_elem(&execveat_tids, &old);
	}
	fill_hdr(&r->h, K_EXEC, nr);

	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(t, mm, exe_file);
	r->exe_ino = BPF_CORE_READ(exe, f_inode, i_ino);
	r->cap_eff = BPF_CORE_READ(t, cred, cap_effective.val);
	r->cap_prm = BPF_CORE_READ(t, cred, cap_permitted.val);
	r->vpid = task_vpid(t);
	r->_pad = 0;
	r->start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
	r->sid = BPF_CORE_READ(t, signal, pids[PIDTYPE_SID], numbers[0].nr);
	r->pgid = BPF_CORE_READ(t, signal, pids[PIDTYPE_PGID], numbers[0].nr);
	r->flags = exe_flags(exe);
	fill_tty(r, t);
	fill_cgroup(r, t);

	// The exec policy of the mount namespace: kill what it forbids.
	u32 *pol = bpf_map_lookup_elem(&exec_policy, &r->h.mnt_ns);
	int kill = pol && (((*pol & POL_KILL_UPPER) && (r->flags & EXE_UPPER)) ||
			   ((*pol & POL_KILL_MEMFD) && (r->flags & EXE_MEMFD)));
	if (!kill) {
		struct deny_key k = {.mnt_ns = r->h.mnt_ns, .ino = r->exe_ino};
		u8 *v = bpf_map_lookup_elem(&exec_deny, &k);
		if (v && *v == EXEC_DENIED)
			kill = 1;
		else if (pol && (*pol & POL_ALLOW_ONLY) && !(v && *v == EXEC_ALLOWED))
			kill = 1;
	}
	if (kill && bpf_send_signal(9) == 0)
		r->flags |= EXE_BLOCKED;

	unsigned int off = ctx->__data_loc_filename & 0xFFFF;
	long n = bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), (void *)ctx + off);
	r->filename_len = n > 0 ? n : 0;

	unsigned long start = BPF_CORE_READ(t, mm, arg_start);
	unsigned long end = BPF_CORE_READ(t, mm, arg_end);
	unsigned long len = end > start ? end - start : 0;
	if (len > ARGS_LEN)
		len = ARGS_LEN;
	r->args_len = 0;
	if (len > 0 && bpf_probe_read_user(r->args, len, (void *)start) == 0)
		r->args_len = len;
	bpf_ringbuf_submit(r, 0);
	return 0;
}
SEC("raw_tracepoint/sched_process_fork")
int sched_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	u32 pid = BPF_CORE_READ(child, tgid);
	u32 tid = BPF_CORE_READ(child, pid);
	if (pid != tid) // a new thread, not a new process
		return 0;
	struct fork_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop();
		return 0;
	}
	fill_hdr(&r->h, K_FORK, 0);
	r->child_pid = pid;
	r->child_tid = tid;
	r->start_ns = BPF_CORE_READ(child, start_boottime);
	r->child_vpid = task_vpid(child);
	r->_pad = 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sched_exit(void *ctx)
{
	u64 pt = bpf_get_current_pid_tgid();
	if ((u32)pt != pt >> 32) // a thread, not the process
		return 0;
	struct exit_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop();
		return 0;
	}
	fill_hdr(&r->h, K_EXIT, 0);
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	r->exit_code = BPF_CORE_READ(t, exit_code);
	r->_pad = 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

// begin returns a zeroed scratch record with the header filled in; nr is
// the syscall number.
static __always_inline struct sys_rec *begin(u16 kind, u16 nr)
{
	u32 zero = 0;
	struct sys_rec *r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return 0;
	__builtin_memset(r->arg, 0, sizeof(r->arg));
	r->ret = 0;
	r->addr_len = 0;
	r->nargs = 0;
	r->str1[0] = 0;
	r->str2[0] = 0;
	fill_hdr(&r->h, kind, nr);
	return r;
}

static __always_inline int park(struct sys_rec *r)
{
	u32 tid = r->h.tid;
	bpf_map_update_elem(&pending, &tid, r, BPF_ANY);
	return 0;
}

static __always_inline void fill_local(struct sys_rec *r, u64 fd);

#define EINPROGRESS 115

// finish submits the pending record of the current thread, if any.
static __always_inline int finish(long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct sys_rec *p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	struct sys_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop();
		bpf_map_delete_elem(&pending, &tid);
		return 0;
	}
	bpf_probe_read_kernel(r, sizeof(*r), p);
	r->ret = ret;
	if (r->h.kind == K_ACCEPT && ret >= 0 && r->arg[1]) {
		// accept4: the peer address the kernel wrote back.
		int alen = 0;
		bpf_probe_read_user(&alen, sizeof(alen), (void *)r->arg[2]);
		if (alen > ADDR_LEN)
			alen = ADDR_LEN;
		if (alen > 0 && bpf_probe_read_user(r->addr, alen & 0xff, (void *)r->arg[1]) == 0)
			r->addr_len = alen;
	}
	// The local end: of the connecting socket, of the accepted one.
	if (r->h.kind == K_CONNECT && (ret == 0 || ret == -EINPROGRESS))
		fill_local(r, r->arg[0]);
	else if (r->h.kind == K_ACCEPT && ret >= 0)
		fill_local(r, ret);
	bpf_ringbuf_submit(r, 0);
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

#define SYS_EXIT(name)                                                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)                            \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                 \
	{                                                                     \
		return finish(ctx->ret);                                      \
	}

// NR is the syscall number of a syscalls/sys_enter_* tracepoint (an int
// at the offset of trace_event_raw_sys_enter's id).
#define NR ((u16)ctx->id)

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000

// not_canonical says whether the first n bytes of s (n counts the NUL)
// hold "./" or "//": a path that climbs ("../", directory traversal) or is
// written the long way ("/etc/./shadow", "/etc//shadow", "./shadow") is
// kept whatever it names, because the sensitive-prefix filter sees the
// path as written, not as resolved.
static __always_inline int not_canonical(const char *s, long n)
{
	for (int i = 0; i < PATH_LEN - 1; i++) {
		if (i + 2 >= n)
			return 0;
		if ((s[i] == '.' || s[i] == '/') && s[i + 1] == '/')
			return 1;
	}
	return 0;
}

static __always_inline int open_enter(u16 nr, const char *path, u64 flags, u64 mode)
{
	struct sys_rec *r = begin(K_OPEN, nr);
	if (!r)
		return 0;
	r->arg[0] = flags;
	r->arg[1] = mode;
	long n = bpf_probe_read_user_str(r->str1, sizeof(r->str1), path);
	if (n <= 0)
		return 0;
	if (!(flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC))) {
		struct prefix_key *k = (struct prefix_key *)r->str2;
		k->prefixlen = PREFIX_LEN * 8;
		bpf_probe_read_kernel(k->data, sizeof(k->data), r->str1);
		int keep = bpf_map_lookup_elem(&sensitive, k) != 0;
		r->str2[0] = 0;
		r->str2[1] = 0;
		r->str2[2] = 0;
		r->str2[3] = 0;
		if (!keep && !not_canonical(r->str1, n))
			return 0;
	}
	return park(r);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(NR, (const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}
SYS_EXIT(openat)

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return open_enter(NR, (const char *)ctx->args[1], how.flags, how.mode);
}
SYS_EXIT(openat2)

// open(path, flags, mode)
SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(NR, (const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}
SYS_EXIT(open)

// creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode).
SEC("tracepoint/syscalls/sys_enter_creat")
int enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(NR, (const char *)ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC, ctx->args[1]);
}
SYS_EXIT(creat)

#define S_IFMT 0170000
#define S_IFSOCK 0140000

// fd_socket returns the socket behind fd in the current task's fd table,
// or 0 when fd is not a socket.
static __always_inline struct socket *fd_socket(u64 fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd & 0xffffff]);
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	return BPF_CORE_READ(f, private_data);
}

// sock_info packs the family, type and protocol of the socket behind fd
// for connect, accept, bind and listen records (their arg[3]): type in
// bits 0-15, protocol in 16-31, family in 32-47; 0 when fd is not a
// socket.
static __always_inline u64 sock_info(u64 fd)
{
	struct socket *sock = fd_socket(fd);
	if (!sock)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	u64 type = BPF_CORE_READ(sock, type);
	u64 proto = BPF_CORE_READ(sk, sk_protocol);
	u64 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	return (type & 0xffff) | (proto & 0xffff) << 16 | (fam & 0xffff) << 32;
}

// fill_local writes the local address and port of the inet or inet6
// socket behind fd into r->str1 (struct local_ep).
static __always_inline void fill_local(struct sys_rec *r, u64 fd)
{
	struct local_ep *l = (struct local_ep *)r->str1;
	__builtin_memset(l, 0, sizeof(*l));
	struct socket *sock = fd_socket(fd);
	if (!sock)
		return;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (fam == 2)
		bpf_core_read(l->addr, 4, &sk->__sk_common.skc_rcv_saddr);
	else if (fam == 10)
		bpf_core_read(l->addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	else
		return;
	l->port = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
	l->family = fam;
}

// sockaddr_enter copies the user sockaddr at ptr (length alen) and parks.
static __always_inline int sockaddr_enter(u16 kind, u16 nr, u64 fd, const void *ptr, u64 alen)
{
	struct sys_rec *r = begin(kind, nr);
	if (!r)
		return 0;
	r->arg[0] = fd;
	if (alen > ADDR_LEN)
		alen = ADDR_LEN;
	if (ptr && alen > 0 && bpf_probe_read_user(r->addr, alen & 0xff, ptr) == 0)
		r->addr_len = alen;
	u16 fam = *(u16 *)r->addr;
	if (fam != 1 && fam != 2 && fam != 10) // AF_UNIX, AF_INET, AF_INET6
		return 0;
	r->arg[3] = sock_info(fd);
	return park(r);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	return sockaddr_enter(K_CONNECT, NR, ctx->args[0], (void *)ctx->args[1], ctx->args[2]);
}
SYS_EXIT(connect)

SEC("tracepoint/syscalls/sys_enter_bind")
int enter_bind(struct trace_event_raw_sys_enter *ctx)
{
	return sockaddr_enter(K_BIND, NR, ctx->args[0], (void *)ctx->args[1], ctx->args[2]);
}
SYS_EXIT(bind)

SEC("tracepoint/syscalls/sys_enter_listen")
int enter_listen(struct trace_event_raw_sys_enter *ctx)
{
	struct sys_rec *r = begin(K_LISTEN, NR);
	if (!r)
		return 0;
	r->arg[0] = ctx->args[0];
	r->arg[1] = ctx->args[1];
	r->arg[3] = sock_info(ctx->args[0]);
	return park(r);
}
SYS_EXIT(listen)

SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct trace_event_raw_sys_enter *ctx)
{
	struct sys_rec *r = begin(K_ACCEPT, NR);
	if (!r)
		return 0;
	r->arg[0] = ctx->args[0];
	r->arg[1] = ctx->args[1]; // upeer_sockaddr
	r->arg[2] = ctx->args[2]; // upeer_addrlen
	r->arg[3] = sock_info(ctx->args[0]); // the listening socket's: the accepted one's are the same
	return park(r);
}
SYS_EXIT(accept4)

// socket(family, type, protocol): only what is unusual. The everyday
// sockets (unix, inet, inet6 and netlink; stream, datagram or seqpacket)
// are dropped here, so a connect-heavy loop does not pay for them.
SEC("tracepoint/syscalls/sys_enter_socket")
int enter_socket(struct trace_event_raw_sys_enter *ctx)
{
	u64 fam = ctx->args[0], type = ctx->args[1] & 0xf;
	if ((fam == 1 || fam == 2 || fam == 10 || fam == 16) && (type == 1 || type == 2 || type == 5))
		return 0;
	struct sys_rec *r = begin(K_SOCKET, NR);
	if (!r)
		return 0;
	r->arg[0] = fam;
	r->arg[1] = ctx->args[1];
	r->arg[2] = ctx->args[2];
	return park(r);
}
SYS_EXIT(socket)

// dup_enter keeps dup, dup2 and dup3 of a socket, with the socket's
// family, type and endpoints read from the task's fd table.
static __always_inline int dup_enter(u16 nr, u64 oldfd, u64 newfd)
{
	struct socket *sock = fd_socket(oldfd);
	if (!sock)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	struct sys_rec *r = begin(K_DUP, nr);
	if (!r)
		return 0;
	r->arg[0] = oldfd;
	r->arg[1] = newfd;
	struct dup_sock *d = (struct dup_sock *)r->addr;
	__builtin_memset(d, 0, sizeof(*d));
	d->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	d->type = BPF_CORE_READ(sock, type);
	d->protocol = BPF_CORE_READ(sk, sk_protocol);
	if (d->family == 2 || d->family == 10) {
		d->sport = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
		d->dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	}
	if (d->family == 2) {
		bpf_core_read(d->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(d->daddr, 4, &sk->__sk_common.skc_daddr);
	} else if (d->family == 10) {
		bpf_core_read(d->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(d->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	r->addr_len = sizeof(*d);
	return park(r);
}

SEC("tracepoint/syscalls/sys_enter_dup")
int enter_dup(struct trace_event_raw_sys_enter *ctx)
{
	return dup_enter(NR, ctx->args[0], 0);
}
SYS_EXIT(dup)

SEC("tracepoint/syscalls/sys_enter_dup2")
int enter_dup2(struct trace_event_raw_sys_enter *ctx)
{
	return dup_enter(NR, ctx->args[0], ctx->args[1]);
}
SYS_EXIT(dup2)

SEC("tracepoint/syscalls/sys_enter_dup3")
int enter_dup3(struct trace_event_raw_sys_enter *ctx)
{
	return dup_enter(NR, ctx->args[0], ctx->args[1]);
}
SYS_EXIT(dup3)

// capset(header, data): the effective, permitted and inheritable sets
// asked for, and the target pid (0 is the caller).
SEC("tracepoint/syscalls/sys_enter_capset")
int enter_capset(struct trace_event_raw_sys_enter *ctx)
{
	struct sys_rec *r = begin(K_CAPSET, NR);
	if (!r)
		return 0;
	struct {
		u32 version;
		s32 pid;
	} hdr = {};
	struct {
		u32 effective, permitted, inheritable;
	} data[2] = {};
	bpf_probe_read_user(&hdr, sizeof(hdr), (void *)ctx->args[0]);
	if (ctx->args[1])
		bpf_probe_read_user(&data, sizeof(data), (void *)ctx->args[1]);
	r->arg[0] = data[0].effective | (u64)data[1].effective << 32;
	r->arg[1] = data[0].permitted | (u64)data[1].permitted << 32;
	r->arg[2] = data[0].inheritable | (u64)data[1].inheritable << 32;
	r->arg[3] = (u32)hdr.pid;
	return park(r);
}
SYS_EXIT(capset)

// Small syscalls: integer arguments a0..a2 into arg[], up to two strings.
static __always_inline int simple(u16 kind, u16 nr, u32 n, u64 a0, u64 a1, u64 a2, const char *s1, const char *s2)
{
	struct sys_rec *r = begin(kind, nr);
	if (!r)
		return 0;
	r->nargs = n;
	r->arg[0] = a0;
	r->arg[1] = a1;
	r->arg[2] = a2;
	if (s1)
		bpf_probe_read_user_str(r->str1, sizeof(r->str1), s1);
	if (s2)
		bpf_probe_read_user_str(r->str2, sizeof(r->str2), s2);
	return park(r);
}

#define A(i) (ctx->args[i])
#define S(i) ((const char *)ctx->args[i])

#define SIMPLE(name, kind, n, a0, a1, a2, s1, s2)                                \
	SEC("tracepoint/syscalls/sys_enter_" #name)                           \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)               \
	{                                                                     \
		return simple(kind, NR, n, a0, a1, a2, s1, s2);                  \
	}                                                                     \
	SYS_EXIT(name)

// unlinkat(dfd, path, flags)
SIMPLE(unlinkat, K_UNLINK, 0, A(0), A(2), 0, S(1), 0)
// renameat2(olddfd, old, newdfd, new, flags)
SIMPLE(renameat2, K_RENAME, 0, A(0), A(2), A(4), S(1), S(3))
// chmod(path, mode)
SIMPLE(chmod, K_CHMOD, 0, A(1), 0, 0, S(0), 0)
// fchmodat(dfd, path, mode)
SIMPLE(fchmodat, K_CHMOD, 0, A(2), A(0), 0, S(1), 0)
// fchmodat2(dfd, path, mode, flags)
SIMPLE(fchmodat2, K_CHMOD, 0, A(2), A(0), A(3), S(1), 0)
// setuid(uid)
SIMPLE(setuid, K_SETUID, 1, A(0), 0, 0, 0, 0)
// setreuid(ruid, euid)
SIMPLE(setreuid, K_SETUID, 2, A(0), A(1), 0, 0, 0)
// setresuid(ruid, euid, suid)
SIMPLE(setresuid, K_SETUID, 3, A(0), A(1), A(2), 0, 0)
// setgid(gid)
SIMPLE(setgid, K_SETGID, 1, A(0), 0, 0, 0, 0)
// setregid(rgid, egid)
SIMPLE(setregid, K_SETGID, 2, A(0), A(1), 0, 0, 0)
// setresgid(rgid, egid, sgid)
SIMPLE(setresgid, K_SETGID, 3, A(0), A(1), A(2), 0, 0)
// ptrace(request, pid, addr, data)
SIMPLE(ptrace, K_PTRACE, 0, A(0), A(1), 0, 0, 0)
// memfd_create(name, flags)
SIMPLE(memfd_create, K_MEMFD, 0, A(1), 0, 0, S(0), 0)
// init_module(image, len, params)
SIMPLE(init_module, K_MODULE, 0, 0, A(1), 0, S(2), 0)
// finit_module(fd, params, flags)
SIMPLE(finit_module, K_MODULE, 0, A(2), A(0), 0, S(1), 0)
// unshare(flags)
SIMPLE(unshare, K_UNSHARE, 0, A(0), 0, 0, 0, 0)
// setns(fd, nstype)
SIMPLE(setns, K_SETNS, 0, A(1), A(0), 0, 0, 0)
// mount(source, target, type, flags, data): the file system type goes
// into addr.
SEC("tracepoint/syscalls/sys_enter_mount")
int enter_mount(struct trace_event_raw_sys_enter *ctx)
{
	struct sys_rec *r = begin(K_MOUNT, NR);
	if (!r)
		return 0;
	r->arg[0] = A(3);
	bpf_probe_read_user_str(r->str1, sizeof(r->str1), S(0));
	bpf_probe_read_user_str(r->str2, sizeof(r->str2), S(1));
	r->addr[0] = 0;
	if (S(2)) {
		long n = bpf_probe_read_user_str(r->addr, sizeof(r->addr), S(2));
		if (n > 0)
			r->addr_len = n;
	}
	return park(r);
}
SYS_EXIT(mount)
// umount2(target, flags); its tracepoint is named after the kernel's
// sys_umount.
SIMPLE(umount, K_UMOUNT, 0, A(1), 0, 0, S(0), 0)
// bpf(cmd, attr, size)
SIMPLE(bpf, K_BPF, 0, A(0), 0, 0, 0, 0)
// renameat(olddfd, old, newdfd, new)
SIMPLE(renameat, K_RENAME, 0, A(0), A(2), 0, S(1), S(3))
// rename(old, new)
SIMPLE(rename, K_RENAME, 0, 0, 0, 0, S(0), S(1))
// unlink(path)
SIMPLE(unlink, K_UNLINK, 0, 0, 0, 0, S(0), 0)
// link(old, new)
SIMPLE(link, K_LINK, 0, 0, 0, 0, S(0), S(1))
// linkat(olddfd, old, newdfd, new, flags)
SIMPLE(linkat, K_LINK, 0, A(0), A(2), A(4), S(1), S(3))
// symlink(target, linkpath)
SIMPLE(symlink, K_SYMLINK, 0, 0, 0, 0, S(0), S(1))
// symlinkat(target, newdfd, linkpath)
SIMPLE(symlinkat, K_SYMLINK, 0, 0, A(1), 0, S(0), S(2))
// mkdir(path, mode)
SIMPLE(mkdir, K_MKDIR, 0, A(1), 0, 0, S(0), 0)
// mkdirat(dfd, path, mode)
SIMPLE(mkdirat, K_MKDIR, 0, A(2), A(0), 0, S(1), 0)
// chown(path, uid, gid)
SIMPLE(chown, K_CHOWN, 0, A(1), A(2), 0, S(0), 0)
// lchown(path, uid, gid)
SIMPLE(lchown, K_CHOWN, 0, A(1), A(2), 0, S(0), 0)
// fchown(fd, uid, gid)
SIMPLE(fchown, K_CHOWN, 0, A(1), A(2), A(0), 0, 0)
// fchownat(dfd, path, uid, gid, flags)
SIMPLE(fchownat, K_CHOWN, 0, A(2), A(3), A(0), S(1), 0)

#define NR_INIT_MODULE 175
#define NR_FINIT_MODULE 313

// init_module and finit_module on kernels without their syscall
// tracepoints: the BTF-typed raw tracepoints sys_enter and sys_exit, which
// fire for every syscall, so the syscall number is the first thing checked
// (read directly: no probe read on the path of every other syscall).
SEC("tp_btf/sys_enter")
int BPF_PROG(btf_enter_module, struct pt_regs *regs, long id)
{
	if (id != NR_INIT_MODULE && id != NR_FINIT_MODULE)
		return 0;
	if (id == NR_INIT_MODULE)
		return simple(K_MODULE, id, 0, 0, regs->si, 0, (const char *)regs->dx, 0);
	return simple(K_MODULE, id, 0, regs->dx, regs->di, 0, (const char *)regs->si, 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(btf_exit_module, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;
	if (id != NR_INIT_MODULE && id != NR_FINIT_MODULE)
		return 0;
	return finish(ret);
}

// The same on kernels without BTF-typed raw tracepoints, through untyped
// ones (a probe read of the syscall number at every syscall exit).
SEC("raw_tracepoint/sys_enter")
int raw_enter_module(struct bpf_raw_tracepoint_args *ctx)
{
	long id = ctx->args[1];
	if (id != NR_INIT_MODULE && id != NR_FINIT_MODULE)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	u64 di = BPF_CORE_READ(regs, di), si = BPF_CORE_READ(regs, si), dx = BPF_CORE_READ(regs, dx);
	if (id == NR_INIT_MODULE)
		return simple(K_MODULE, id, 0, 0, si, 0, (const char *)dx, 0);
	return simple(K_MODULE, id, 0, dx, di, 0, (const char *)si, 0);
}

SEC("raw_tracepoint/sys_exit")
int raw_exit_module(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long id = BPF_CORE_READ(regs, orig_ax);
	if (id != NR_INIT_MODULE && id != NR_FINIT_MODULE)
		return 0;
	return finish(ctx->args[1]);
}

// The Go decoder (record.go) hard-codes these layouts; TestLayout checks
// hdr and sys_rec against the BTF; the asserts here check the rest.
_Static_assert(sizeof(struct hdr) == 88, "hdr layout");
_Static_assert(sizeof(struct exec_rec) == 88 + 64 + TTY_LEN + CGROUP_LEN + PATH_LEN + ARGS_LEN, "exec_rec layout");
_Static_assert(sizeof(struct dup_sock) <= ADDR_LEN, "dup_sock fits sys_rec.addr");
_Static_assert(sizeof(struct fork_rec) == 112, "fork_rec layout");
_Static_assert(sizeof(struct exit_rec) == 96, "exit_rec layout");
#define OFF(s, f) __builtin_offsetof(struct s, f)
_Static_assert(OFF(exec_rec, exe_ino) == 88 && OFF(exec_rec, cap_eff) == 96 && OFF(exec_rec, start_ns) == 104 &&
		       OFF(exec_rec, cap_prm) == 112 && OFF(exec_rec, filename_len) == 120 && OFF(exec_rec, args_len) == 124 &&
		       OFF(exec_rec, tty_nr) == 128 && OFF(exec_rec, sid) == 132 && OFF(exec_rec, pgid) == 136 &&
		       OFF(exec_rec, flags) == 140 && OFF(exec_rec, vpid) == 144 && OFF(exec_rec, tty) == 152 &&
		       OFF(exec_rec, cgroup) == 184 && OFF(exec_rec, filename) == 312 && OFF(exec_rec, args) == 568 &&
		       OFF(fork_rec, start_ns) == 96 && OFF(fork_rec, child_vpid) == 104,
	       "exec_rec offsets (record.go)");
_Static_assert(OFF(dup_sock, family) == 0 && OFF(dup_sock, type) == 2 && OFF(dup_sock, protocol) == 4 &&
		       OFF(dup_sock, sport) == 8 && OFF(dup_sock, dport) == 10 && OFF(dup_sock, saddr) == 16 &&
		       OFF(dup_sock, daddr) == 32 && sizeof(struct dup_sock) == 48,
	       "dup_sock offsets (record.go)");
_Static_assert(sizeof(struct local_ep) == 24 && OFF(local_ep, port) == 2 && OFF(local_ep, addr) == 8,
	       "local_ep layout (record.go)");
