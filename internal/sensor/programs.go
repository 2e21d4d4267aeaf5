package sensor

// A program is one switchable unit: a tracepoint program, or the enter and
// exit halves of a syscall, which are attached together or not at all.
// When parts cannot be attached, the first of fallbacks that can is
// attached instead.
type program struct {
	name      string
	parts     []part
	fallbacks [][]part
}

// part is one eBPF program and where it attaches; an empty group means a
// raw tracepoint, the group "tp_btf" a BTF-typed raw tracepoint.
type part struct {
	prog, group, event string
}

func syscallParts(name string) []part {
	return []part{
		{"enter_" + name, "syscalls", "sys_enter_" + name},
		{"exit_" + name, "syscalls", "sys_exit_" + name},
	}
}

func sysProgram(name string) program {
	return program{name: name, parts: syscallParts(name)}
}

// programs are every program, by the name Options.Disable and Status use.
var programs = []program{
	{name: "exec", parts: []part{{"sched_exec", "sched", "sched_process_exec"}}},
	// execveat only marks the thread for exec to name the syscall.
	sysProgram("execveat"),
	{name: "fork", parts: []part{{"sched_fork", "", "sched_process_fork"}}},
	{name: "exit", parts: []part{{"sched_exit", "sched", "sched_process_exit"}}},
	sysProgram("openat"),
	sysProgram("openat2"),
	sysProgram("open"),
	sysProgram("creat"),
	sysProgram("connect"),
	sysProgram("bind"),
	sysProgram("listen"),
	sysProgram("accept4"),
	sysProgram("socket"),
	sysProgram("dup"),
	sysProgram("dup2"),
	sysProgram("dup3"),
	sysProgram("unlinkat"),
	sysProgram("unlink"),
	sysProgram("renameat"),
	sysProgram("renameat2"),
	sysProgram("rename"),
	sysProgram("link"),
	sysProgram("linkat"),
	sysProgram("symlink"),
	sysProgram("symlinkat"),
	sysProgram("mkdir"),
	sysProgram("mkdirat"),
	sysProgram("chmod"),
	sysProgram("fchmodat"),
	sysProgram("fchmodat2"),
	sysProgram("chown"),
	sysProgram("lchown"),
	sysProgram("fchown"),
	sysProgram("fchownat"),
	sysProgram("setuid"),
	sysProgram("setreuid"),
	sysProgram("setresuid"),
	sysProgram("setgid"),
	sysProgram("setregid"),
	sysProgram("setresgid"),
	sysProgram("capset"),
	sysProgram("ptrace"),
	sysProgram("memfd_create"),
	// init_module and finit_module have no syscall tracepoints on some
	// kernels (this project's among them): then raw sys_enter/sys_exit
	// programs that return at once for every other syscall.
	{
		name:  "module",
		parts: append(syscallParts("init_module"), syscallParts("finit_module")...),
		fallbacks: [][]part{
			{{"btf_enter_module", "tp_btf", "sys_enter"}, {"btf_exit_module", "tp_btf", "sys_exit"}},
			{{"raw_enter_module", "", "sys_enter"}, {"raw_exit_module", "", "sys_exit"}},
		},
	},
	sysProgram("unshare"),
	sysProgram("setns"),
	sysProgram("mount"),
	sysProgram("umount"),
	sysProgram("bpf"),
}
