package sensor

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// TestLayout checks the Go offsets against the C structs in the object's BTF.
func TestLayout(t *testing.T) {
	spec, err := loadBpf()
	if err != nil {
		t.Fatal(err)
	}
	// exec_rec and dup_sock are not in the BTF either; sensor.c checks
	// their offsets against the numbers record.go uses.
	sizes := map[string]int{"hdr": hdrSize, "sys_rec": sysSize}
	for name, want := range sizes {
		var s *btf.Struct
		if err := spec.Types.TypeByName(name, &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int(s.Size) != want {
			t.Errorf("sizeof(struct %s) = %d, Go has %d", name, s.Size, want)
		}
	}
	var s *btf.Struct
	if err := spec.Types.TypeByName("sys_rec", &s); err != nil {
		t.Fatal(err)
	}
	offs := map[string]int{"ret": hdrSize, "arg": sysArgsOff, "addr_len": sysNargsOff - 4, "nargs": sysNargsOff, "addr": sysAddrOff, "str1": sysStr1Off, "str2": sysStr2Off}
	for _, m := range s.Members {
		if want, ok := offs[m.Name]; ok && int(m.Offset.Bytes()) != want {
			t.Errorf("offsetof(sys_rec, %s) = %d, Go has %d", m.Name, m.Offset.Bytes(), want)
		}
	}
}

// rec builds a record as the kernel would.
type rec []byte

func newRec(kind event.Kind, size int) rec {
	b := make(rec, size)
	binary.LittleEndian.PutUint16(b[0:], uint16(kind))
	binary.LittleEndian.PutUint64(b[8:], uint64(time.Second))
	binary.LittleEndian.PutUint32(b[16:], 100) // pid
	binary.LittleEndian.PutUint32(b[20:], 101) // tid
	binary.LittleEndian.PutUint32(b[24:], 1)   // ppid
	binary.LittleEndian.PutUint32(b[28:], 1000)
	binary.LittleEndian.PutUint32(b[44:], 1000) // loginuid
	binary.LittleEndian.PutUint64(b[48:], 42)   // cgroup
	binary.LittleEndian.PutUint32(b[56:], 4026531832)
	copy(b[72:], "sh")
	return b
}

func (b rec) u32(off int, v uint32) rec { binary.LittleEndian.PutUint32(b[off:], v); return b }
func (b rec) u64(off int, v uint64) rec { binary.LittleEndian.PutUint64(b[off:], v); return b }
func (b rec) str(off int, s string) rec { copy(b[off:], s); return b }

func execRec() rec {
	args := "/bin/sh\x00-c\x00echo hi\x00"
	return newRec(event.ProcessExec, execSize).u64(execInoOff, 77).u32(execArgsLenOff, uint32(len(args))).
		str(execFilenameOff, "/bin/sh").str(execArgsOff, args)
}

func connectRec() rec {
	sa := []byte{2, 0, 0x1f, 0x90, 10, 0, 0, 1} // AF_INET, port 8080, 10.0.0.1
	r := newRec(event.NetConnect, sysSize).u64(hdrSize, uint64(0xffffffffffffff91)).u32(sysNargsOff-4, 16)
	copy(r[sysAddrOff:], sa)
	return r
}

func TestDecode(t *testing.T) {
	boot := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := decoder{bootTime: boot}
	proc := event.Process{PID: 100, TID: 101, PPID: 1, Name: "sh", UID: 1000, LoginUID: 1000, CgroupID: 42, MntNS: 4026531832}
	with := func(f func(p *event.Process)) event.Process { p := proc; f(&p); return p }
	tests := []struct {
		name string
		in   rec
		want event.Event
	}{
		{"exec", execRec(), event.Event{Type: event.ProcessExec, Process: with(func(p *event.Process) {
			p.Exe, p.ExeInode, p.Args, p.CmdLine = "/bin/sh", 77, []string{"/bin/sh", "-c", "echo hi"}, "/bin/sh -c echo hi"
		})}},
		{"exit", newRec(event.ProcessExit, exitSize).u32(hdrSize, 3<<8), event.Event{Type: event.ProcessExit, Process: proc, Exit: &event.Exit{Code: 3}}},
		{"killed", newRec(event.ProcessExit, exitSize).u32(hdrSize, 9), event.Event{Type: event.ProcessExit, Process: proc, Exit: &event.Exit{Signal: 9}}},
		{"fork", newRec(event.ProcessFork, forkSize).u32(hdrSize, 200).u32(hdrSize+4, 200), event.Event{Type: event.ProcessFork,
			Process: with(func(p *event.Process) { p.PID, p.TID, p.PPID = 200, 200, 100 }), Parent: &proc}},
		{"open", newRec(event.FileOpen, sysSize).u64(hdrSize, 3).u64(sysArgsOff, 0o1101).u64(sysArgsOff+8, 0o644).str(sysStr1Off, "/tmp/x"),
			event.Event{Type: event.FileOpen, Process: proc, Ret: 3, File: &event.File{Path: "/tmp/x", Flags: 0o1101, Mode: 0o644}}},
		{"connect", connectRec(), event.Event{Type: event.NetConnect, Process: proc, Ret: -111,
			Net: &event.Net{Family: "inet", Dst: netip.MustParseAddrPort("10.0.0.1:8080")}}},
		{"setresuid", newRec(event.PrivSetuid, sysSize).u32(sysNargsOff, 3).u64(sysArgsOff+8, 5),
			event.Event{Type: event.PrivSetuid, Process: proc, Detail: &event.Detail{IDs: []uint32{0, 5, 0}}}},
		{"mount", newRec(event.Mount, sysSize).u64(sysArgsOff, 1).str(sysStr1Off, "tmpfs").str(sysStr2Off, "/mnt"),
			event.Event{Type: event.Mount, Process: proc, Detail: &event.Detail{Name: "tmpfs", Target: "/mnt", Request: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Time = boot.Add(time.Second)
			got, err := d.decode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	d := decoder{}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short header", make([]byte, hdrSize-1)},
		{"short exec", execRec()[:execSize-1]},
		{"short sys", connectRec()[:sysSize-1]},
		{"unknown kind", newRec(event.KindUnknown, sysSize)},
		{"kind out of range", newRec(event.Kind(999), sysSize)},
	}
	for _, tt := range tests {
		if _, err := d.decode(tt.in); err == nil {
			t.Errorf("%s: decode succeeded, want an error", tt.name)
		}
	}
	if _, err := d.decode(make([]byte, 3)); !errors.Is(err, errShort) {
		t.Errorf("decode of 3 bytes: %v, want errShort", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(execRec()))
	f.Add([]byte(connectRec()))
	f.Add([]byte(newRec(event.ProcessExit, exitSize)))
	f.Add([]byte(newRec(event.Mount, sysSize)))
	f.Add([]byte(newRec(event.NetAccept, sysSize).u32(sysNargsOff-4, 0xffffffff)))
	f.Add([]byte(execRec().u32(execArgsLenOff, 0xffffffff)))
	f.Add([]byte(fullExecRec()))
	f.Add([]byte(dupRec()))
	f.Add([]byte(newRec(event.NetSocket, sysSize).u64(sysArgsOff, 17).u64(sysArgsOff+8, 3)))
	f.Add([]byte(newRec(event.PrivCapset, sysSize).u64(sysArgsOff+24, 0xffffffff)))
	f.Add([]byte(newRec(event.FDDup, sysSize).u32(sysNargsOff-4, 0xffffffff)))
	f.Add([]byte(connectRec().u64(sysArgsOff+24, 0xffffffffffffffff)))
	f.Add([]byte(connectRec().u64(sysArgsOff+24, 2<<32).str(sysStr1Off, "\x0a\x00\x00\x35")))
	f.Add([]byte(newRec(event.Mount, sysSize).u32(sysNargsOff-4, 0xffffffff).str(sysAddrOff, "tmpfs")))
	f.Add([]byte(newRec(event.ProcessFork, forkSize).u32(forkVPIDOff, 0xffffffff)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decoder{}.decode(b)
		if err == nil && (ev.Type == event.KindUnknown || len(b) < hdrSize) {
			t.Errorf("decoded %d bytes as %v without error", len(b), ev.Type)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, r := range []struct {
		name string
		rec  rec
	}{{"exec", execRec()}, {"exec-full", fullExecRec()}, {"connect", connectRec()}, {"dup", dupRec()}} {
		b.Run(r.name, func(b *testing.B) {
			d := decoder{}
			b.SetBytes(int64(len(r.rec)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.decode(r.rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// fullExecRec is an exec record with every field set.
func fullExecRec() rec {
	r := execRec().u64(execCapOff, 0x1ffffffffff).u32(execTTYNrOff, 34819).u32(execSIDOff, 90).u32(execPGIDOff, 95).
		u32(execFlagsOff, exeMemfd|exeUpper|exeBlocked).str(execTTYOff, "pts3").str(execCgroupOff, "docker-abc.scope")
	binary.LittleEndian.PutUint16(r[2:], 322) // execveat
	return r
}

// dupRec is dup2(3, 0) of a connected TCP socket 10.0.0.2:40000 → 10.0.0.1:8080.
func dupRec() rec {
	r := newRec(event.FDDup, sysSize).u64(sysArgsOff, 3).u64(sysArgsOff+8, 0).u32(sysNargsOff-4, dupSize)
	binary.LittleEndian.PutUint16(r[2:], 33) // dup2
	d := r[sysAddrOff:]
	binary.LittleEndian.PutUint16(d[0:], 2)
	binary.LittleEndian.PutUint16(d[2:], 1)
	binary.LittleEndian.PutUint16(d[4:], 6)
	binary.BigEndian.PutUint16(d[8:], 40000)
	binary.BigEndian.PutUint16(d[10:], 8080)
	copy(d[16:], []byte{10, 0, 0, 2})
	copy(d[32:], []byte{10, 0, 0, 1})
	return r
}

func TestDecodeNew(t *testing.T) {
	boot := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := decoder{bootTime: boot}
	proc := event.Process{PID: 100, TID: 101, PPID: 1, Name: "sh", UID: 1000, LoginUID: 1000, CgroupID: 42, MntNS: 4026531832}
	sys := func(kind event.Kind, nr uint16) rec {
		r := newRec(kind, sysSize)
		binary.LittleEndian.PutUint16(r[2:], nr)
		return r
	}
	tests := []struct {
		name string
		in   rec
		want event.Event
	}{
		{"exec", fullExecRec(), event.Event{Type: event.ProcessExec, Syscall: "execveat", Blocked: true, Process: func() event.Process {
			p := proc
			p.Exe, p.ExeInode, p.Args, p.CmdLine = "/bin/sh", 77, []string{"/bin/sh", "-c", "echo hi"}, "/bin/sh -c echo hi"
			p.CapEff, p.TTY, p.TTYNr, p.SID, p.PGID = 0x1ffffffffff, "pts/3", 34819, 90, 95
			p.ExeMemfd, p.ExeUpper, p.CgroupName = true, true, "docker-abc.scope"
			return p
		}()}},
		{"linkat", sys(event.FileLink, 265).str(sysStr1Off, "/a").str(sysStr2Off, "/b"),
			event.Event{Type: event.FileLink, Syscall: "linkat", Process: proc, File: &event.File{Path: "/a", NewPath: "/b"}}},
		{"symlink", sys(event.FileSymlink, 88).str(sysStr1Off, "/etc/shadow").str(sysStr2Off, "/tmp/s"),
			event.Event{Type: event.FileSymlink, Syscall: "symlink", Process: proc, File: &event.File{Path: "/etc/shadow", NewPath: "/tmp/s"}}},
		{"mkdirat", sys(event.FileMkdir, 258).u64(sysArgsOff, 0o755).str(sysStr1Off, "/d"),
			event.Event{Type: event.FileMkdir, Syscall: "mkdirat", Process: proc, File: &event.File{Path: "/d", Mode: 0o755}}},
		{"fchownat", sys(event.FileChown, 260).u64(sysArgsOff, 0).u64(sysArgsOff+8, 5).str(sysStr1Off, "/f"),
			event.Event{Type: event.FileChown, Syscall: "fchownat", Process: proc, File: &event.File{Path: "/f", GID: 5}}},
		{"socket", sys(event.NetSocket, 41).u64(sysArgsOff, 17).u64(sysArgsOff+8, 3|unix.SOCK_CLOEXEC).u64(sysArgsOff+16, 0x300).u64(hdrSize, 3),
			event.Event{Type: event.NetSocket, Syscall: "socket", Process: proc, Ret: 3, Net: &event.Net{Family: "packet", Type: "raw", Protocol: 0x300}}},
		{"socket unknown family", sys(event.NetSocket, 41).u64(sysArgsOff, 99).u64(sysArgsOff+8, 15),
			event.Event{Type: event.NetSocket, Syscall: "socket", Process: proc, Net: &event.Net{Family: "af_99", Type: "type_15"}}},
		{"dup2", dupRec(), event.Event{Type: event.FDDup, Syscall: "dup2", Process: proc, Detail: &event.Detail{Request: 3},
			Net: &event.Net{Family: "inet", Type: "stream", Protocol: 6,
				Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dst: netip.MustParseAddrPort("10.0.0.1:8080")}}},
		{"capset", sys(event.PrivCapset, 126).u64(sysArgsOff, 1<<21).u64(sysArgsOff+8, 1<<21|1).u64(sysArgsOff+24, 77),
			event.Event{Type: event.PrivCapset, Syscall: "capset", Process: proc, Target: &event.Process{PID: 77},
				Detail: &event.Detail{CapEffective: 1 << 21, CapPermitted: 1<<21 | 1}}},
		{"umount2", sys(event.Umount, 166).u64(sysArgsOff, 2).str(sysStr1Off, "/mnt"),
			event.Event{Type: event.Umount, Syscall: "umount2", Process: proc, Detail: &event.Detail{Target: "/mnt", Request: 2}}},
		{"unknown syscall number", sys(event.FileUnlink, 9999).str(sysStr1Off, "/x"),
			event.Event{Type: event.FileUnlink, Process: proc, File: &event.File{Path: "/x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Time = boot.Add(time.Second)
			got, err := d.decode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTTYName(t *testing.T) {
	for in, want := range map[string]string{"pts3": "pts/3", "pts": "pts", "tty1": "tty1", "ttyS0": "ttyS0", "ptsx": "ptsx", "": ""} {
		if got := ttyName(in); got != want {
			t.Errorf("ttyName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeStartTime(t *testing.T) {
	btime := time.Unix(1700000000, 0)
	d := decoder{bootTime: btime.Add(123456789), btime: btime}
	// 5.678901234 s after boot is 567 whole ticks, as /proc/PID/stat says.
	want := btime.Add(5670 * time.Millisecond)
	fork, err := d.decode(newRec(event.ProcessFork, forkSize).u32(hdrSize, 200).u64(hdrSize+8, 5678901234))
	if err != nil {
		t.Fatal(err)
	}
	exec, err := d.decode(execRec().u64(execStartOff, 5678901234))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []event.Event{fork, exec} {
		if !ev.Process.StartTime.Equal(want) {
			t.Errorf("%s: start time %v, want %v", ev.Type, ev.Process.StartTime, want)
		}
	}
	if got := (decoder{}).startTime(5678901234); !got.IsZero() {
		t.Errorf("start time without btime = %v, want zero", got)
	}
	if got := parseBtime([]byte("cpu 1 2\nbtime 1700000000\nprocesses 5\n")); !got.Equal(btime) {
		t.Errorf("parseBtime = %v, want %v", got, btime)
	}
	for _, bad := range []string{"", "btime x\n", "btime -5\n", "btim 5\n"} {
		if got := parseBtime([]byte(bad)); !got.IsZero() {
			t.Errorf("parseBtime(%q) = %v, want zero", bad, got)
		}
	}
}
