// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Vigil's eBPF programs. Every program writes one record to the ring buffer
// "events": a fixed header (struct hdr) followed by a kind-specific payload
// (struct exec_rec, struct fork_rec, struct exit_rec or struct sys_rec).
// The Go side (record.go) decodes the same layout; keep them in step.
//
// Syscall events are taken in two halves: the sys_enter program copies the
// arguments into the per-thread "pending" map, the sys_exit program adds the
// return value and submits the record. Enter-side filtering (the openat
// filter) means the exit side only emits what the enter side kept.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// Kinds: the values of event.Kind in internal/event/event.go.
enum {
	K_EXEC = 1,
	K_FORK = 2,
	K_EXIT = 3,
	K_OPEN = 4,
	K_UNLINK = 5,
	K_RENAME = 6,
	K_CHMOD = 9,
	K_CONNECT = 13,
	K_ACCEPT = 14,
	K_BIND = 15,
	K_LISTEN = 16,
	K_SETUID = 18,
	K_SETGID = 19,
	K_PTRACE = 21,
	K_MODULE = 22,
	K_MOUNT = 23,
	K_UNSHARE = 25,
	K_SETNS = 26,
	K_MEMFD = 27,
	K_BPF = 28,
};

#define COMM_LEN 16
#define PATH_LEN 256
#define ARGS_LEN 1024
#define ADDR_LEN 112
#define PREFIX_LEN 64

// hdr is 88 bytes; every field is naturally aligned.
struct hdr {
	u16 kind;
	u16 _pad0;
	u32 _pad1;
	u64 ts;
	u32 pid, tid, ppid;
	u32 uid, gid, euid, egid, loginuid;
	u64 cgroup_id;
	u32 mnt_ns, pid_ns, net_ns, _pad2;
	char comm[COMM_LEN];
};

struct exec_rec {
	struct hdr h;
	u64 exe_ino;
	u32 filename_len;
	u32 args_len;
	char filename[PATH_LEN];
	char args[ARGS_LEN];
};

struct fork_rec {
	struct hdr h;
	u32 child_pid;
	u32 child_tid;
};

struct exit_rec {
	struct hdr h;
	u32 exit_code;
	u32 _pad;
};

// sys_rec carries every syscall event: arg holds the integer arguments,
// addr a raw sockaddr copy, str1/str2 NUL-terminated user strings.
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

struct prefix_key {
	u32 prefixlen;
	char data[PREFIX_LEN];
};

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

static __always_inline void count_drop(void)
{
	u32 zero = 0;
	u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		*n += 1;
}

static __always_inline void fill_hdr(struct hdr *h, u16 kind)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	u64 pt = bpf_get_current_pid_tgid();
	u64 ug = bpf_get_current_uid_gid();

	h->kind = kind;
	h->_pad0 = 0;
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

SEC("tracepoint/sched/sched_process_exec")
int sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct exec_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop();
		return 0;
	}
	fill_hdr(&r->h, K_EXEC);

	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	r->exe_ino = BPF_CORE_READ(t, mm, exe_file, f_inode, i_ino);

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
	fill_hdr(&r->h, K_FORK);
	r->child_pid = pid;
	r->child_tid = tid;
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
	fill_hdr(&r->h, K_EXIT);
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	r->exit_code = BPF_CORE_READ(t, exit_code);
	r->_pad = 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

// begin returns a zeroed scratch record with the header filled in.
static __always_inline struct sys_rec *begin(u16 kind)
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
	fill_hdr(&r->h, kind);
	return r;
}

static __always_inline int park(struct sys_rec *r)
{
	u32 tid = r->h.tid;
	bpf_map_update_elem(&pending, &tid, r, BPF_ANY);
	return 0;
}

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

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000

static __always_inline int open_enter(const char *path, u64 flags, u64 mode)
{
	struct sys_rec *r = begin(K_OPEN);
	if (!r)
		return 0;
	r->arg[0] = flags;
	r->arg[1] = mode;
	if (bpf_probe_read_user_str(r->str1, sizeof(r->str1), path) <= 0)
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
		if (!keep)
			return 0;
	}
	return park(r);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter((const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}
SYS_EXIT(openat)

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return open_enter((const char *)ctx->args[1], how.flags, how.mode);
}
SYS_EXIT(openat2)

// sockaddr_enter copies the user sockaddr at ptr (length alen) and parks.
static __always_inline int sockaddr_enter(u16 kind, u64 fd, const void *ptr, u64 alen)
{
	struct sys_rec *r = begin(kind);
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
	return park(r);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	return sockaddr_enter(K_CONNECT, ctx->args[0], (void *)ctx->args[1], ctx->args[2]);
}
SYS_EXIT(connect)

SEC("tracepoint/syscalls/sys_enter_bind")
int enter_bind(struct trace_event_raw_sys_enter *ctx)
{
	return sockaddr_enter(K_BIND, ctx->args[0], (void *)ctx->args[1], ctx->args[2]);
}
SYS_EXIT(bind)

SEC("tracepoint/syscalls/sys_enter_listen")
int enter_listen(struct trace_event_raw_sys_enter *ctx)
{
	struct sys_rec *r = begin(K_LISTEN);
	if (!r)
		return 0;
	r->arg[0] = ctx->args[0];
	r->arg[1] = ctx->args[1];
	return park(r);
}
SYS_EXIT(listen)

SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct trace_event_raw_sys_enter *ctx)
{
	struct sys_rec *r = begin(K_ACCEPT);
	if (!r)
		return 0;
	r->arg[0] = ctx->args[0];
	r->arg[1] = ctx->args[1]; // upeer_sockaddr
	r->arg[2] = ctx->args[2]; // upeer_addrlen
	r->arg[3] = ctx->args[3]; // flags
	return park(r);
}
SYS_EXIT(accept4)

// Small syscalls: integer arguments a0..a2 into arg[], up to two strings.
static __always_inline int simple(u16 kind, u32 n, u64 a0, u64 a1, u64 a2, const char *s1, const char *s2)
{
	struct sys_rec *r = begin(kind);
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
		return simple(kind, n, a0, a1, a2, s1, s2);                      \
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
SIMPLE(init_module, K_MODULE, 0, A(1), 0, 0, S(2), 0)
// finit_module(fd, params, flags)
SIMPLE(finit_module, K_MODULE, 0, A(0), A(2), 0, S(1), 0)
// unshare(flags)
SIMPLE(unshare, K_UNSHARE, 0, A(0), 0, 0, 0, 0)
// setns(fd, nstype)
SIMPLE(setns, K_SETNS, 0, A(1), A(0), 0, 0, 0)
// mount(source, target, type, flags, data)
SIMPLE(mount, K_MOUNT, 0, A(3), 0, 0, S(0), S(1))
// bpf(cmd, attr, size)
SIMPLE(bpf, K_BPF, 0, A(0), 0, 0, 0, 0)
// renameat(olddfd, old, newdfd, new)
SIMPLE(renameat, K_RENAME, 0, A(0), A(2), 0, S(1), S(3))
// rename(old, new)
SIMPLE(rename, K_RENAME, 0, 0, 0, 0, S(0), S(1))
// unlink(path)
SIMPLE(unlink, K_UNLINK, 0, 0, 0, 0, S(0), 0)

// The Go decoder (record.go) hard-codes these sizes; TestLayout checks
// sys_rec and hdr against the BTF, these the rest.
_Static_assert(sizeof(struct hdr) == 88, "hdr layout");
_Static_assert(sizeof(struct exec_rec) == 88 + 16 + PATH_LEN + ARGS_LEN, "exec_rec layout");
_Static_assert(sizeof(struct fork_rec) == 96, "fork_rec layout");
_Static_assert(sizeof(struct exit_rec) == 96, "exit_rec layout");
