package event

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// fill sets every field reachable from v to a random value, zero about a
// third of the time, so that omitempty and omitzero paths are exercised.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	if r.IntN(3) == 0 && depth > 0 {
		v.SetZero()
		return
	}
	switch v.Interface().(type) {
	case time.Time:
		v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", 3600*(r.IntN(5)-2)))))
		return
	case netip.AddrPort:
		a := netip.AddrFrom4([4]byte{byte(r.IntN(256)), 1, 2, 3})
		if r.IntN(2) == 0 {
			a = netip.MustParseAddr("2001:db8::1")
		}
		v.Set(reflect.ValueOf(netip.AddrPortFrom(a, uint16(r.IntN(65536)))))
		return
	case Kind:
		v.Set(reflect.ValueOf(Kind(r.IntN(int(kindCount) + 2))))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fill(r, v.Field(i), depth+1)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(r, v.Elem(), depth+1)
	case reflect.Slice:
		n := r.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range r.IntN(4) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(r, k, 0)
			fill(r, e, 0)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.String:
		v.SetString(randString(r))
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(r.Int64() >> (r.IntN(64)))
		if r.IntN(2) == 0 {
			v.SetInt(-v.Int())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(r.Uint64() >> (r.IntN(64)))
	default:
		panic("fill: unhandled " + v.Type().String())
	}
}

func randString(r *rand.Rand) string {
	pieces := []string{"a", "/usr/bin/x", " ", "\"", "\\", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "é", "日本", "\u2028", "\u2029", "\xff", "\xe2\x82", "😀"}
	var s string
	for range r.IntN(6) {
		s += pieces[r.IntN(len(pieces))]
	}
	return s
}

// TestAppendJSONMatchesEncodingJSON checks AppendJSON against
// encoding/json on events with every field set at random — a field added
// to the structs but not to AppendJSON fails here.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		var e Event
		fill(r, reflect.ValueOf(&e).Elem(), 0)
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		got := e.AppendJSON(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d:\nAppendJSON    %s\nencoding/json %s", i, got, want)
		}
	}
	// And the zero event.
	var e Event
	want, _ := json.Marshal(&e)
	if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
		t.Fatalf("zero event:\nAppendJSON    %s\nencoding/json %s", got, want)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "\u2028", "\xff\xfe", "\"\\\n", "日本語"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Event{Process: Process{Name: s, Args: []string{s}}, Workload: &Workload{Host: s, Labels: map[string]string{s: s}}}
		want, _ := json.Marshal(&e)
		if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("%q:\nAppendJSON    %s\nencoding/json %s", s, got, want)
		}
	})
}

func benchEvent() *Event {
	return &Event{
		Time: time.Now(), Type: FileOpen, Syscall: "openat", Ret: 3,
		Process: Process{PID: 1234, TID: 1234, PPID: 1200, Name: "cat", Exe: "/usr/bin/cat", Args: []string{"cat", "/etc/shadow"},
			CmdLine: "cat /etc/shadow", Cwd: "/root", CgroupID: 1234, MntNS: 4026531841, PidNS: 4026531836, NetNS: 4026531840, StartTime: time.Now()},
		Parent:    &Process{PID: 1200, Name: "bash", Exe: "/usr/bin/bash", Args: []string{"bash"}},
		Ancestors: []Ancestor{{PID: 1100, Name: "sshd", Exe: "/usr/sbin/sshd"}, {PID: 1, Name: "systemd", Exe: "/usr/lib/systemd/systemd"}},
		File:      &File{Path: "/etc/shadow"},
		Workload: &Workload{Host: "node1", ContainerID: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
			ContainerName: "web", Image: "nginx:1.25", Runtime: "docker", Labels: map[string]string{"app": "web", "tier": "front"}},
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := benchEvent()
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			_ = enc.Encode(e)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = e.AppendJSON(buf[:0])
		}
	})
}
