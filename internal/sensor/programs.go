package sensor

// A program is one switchable unit: a tracepoint program, or the enter and
// exit halves of a syscall, which are attached together or not at all.
type program struct {
	name  string
	parts []part
}

// part is one eBPF program and where it attaches; an empty group means a
// raw tracepoint.
type part struct {
	prog, group, event string
}

func syscall(name string) program {
	return program{name: name, parts: []part{
		{"enter_" + name, "syscalls", "sys_enter_" + name},
		{"exit_" + name, "syscalls", "sys_exit_" + name},
	}}
}

// programs are every program, by the name Options.Disable and Status use.
var programs = []program{
	{name: "exec", parts: []part{{"sched_exec", "sched", "sched_process_exec"}}},
	{name: "fork", parts: []part{{"sched_fork", "", "sched_process_fork"}}},
	{name: "exit", parts: []part{{"sched_exit", "sched", "sched_process_exit"}}},
	syscall("openat"),
	syscall("openat2"),
	syscall("connect"),
	syscall("bind"),
	syscall("listen"),
	syscall("accept4"),
	syscall("unlinkat"),
	syscall("unlink"),
	syscall("renameat"),
	syscall("renameat2"),
	syscall("rename"),
	syscall("chmod"),
	syscall("fchmodat"),
	syscall("fchmodat2"),
	syscall("setuid"),
	syscall("setreuid"),
	syscall("setresuid"),
	syscall("setgid"),
	syscall("setregid"),
	syscall("setresgid"),
	syscall("ptrace"),
	syscall("memfd_create"),
	syscall("init_module"),
	syscall("finit_module"),
	syscall("unshare"),
	syscall("setns"),
	syscall("mount"),
	syscall("bpf"),
}
