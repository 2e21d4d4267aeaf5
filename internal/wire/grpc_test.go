package wire

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

func TestCodecRegistered(t *testing.T) {
	c := encoding.GetCodec(Codec)
	if c == nil {
		t.Fatalf("no codec registered as %q", Codec)
	}
	in := &AgentMessage{Batch: &Batch{Records: []Record{{Seq: 7, Kind: KindAlert, Time: time.Unix(1, 0).UTC(), Data: json.RawMessage(`{"rule":"R"}`)}}}}
	b, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := new(AgentMessage)
	if err := c.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(in, out); d != "" {
		t.Errorf("round trip (-in +out):\n%s", d)
	}
}

func TestUnmarshalErrorNamesMessage(t *testing.T) {
	err := Unmarshal([]byte(`{"batch":{"records":[{"seq":"x"}]}}`), new(AgentMessage))
	if err == nil || !strings.Contains(err.Error(), "*wire.AgentMessage") || !strings.Contains(err.Error(), `seq`) {
		t.Errorf("error = %v, want one naming *wire.AgentMessage and quoting the input", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		m    AgentMessage
		want string
	}{
		{AgentMessage{}, "empty"},
		{AgentMessage{Hello: &Hello{}}, ""},
		{AgentMessage{Hello: &Hello{}, Batch: &Batch{}}, "2 fields"},
	} {
		err := tc.m.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.m, err, tc.want)
		}
	}
}

// echo is an AgentServer that answers Enroll with the hostname as agent ID
// and acks every batch with its last sequence.
type echo struct{}

func (echo) Enroll(_ context.Context, r *EnrollRequest) (*EnrollResponse, error) {
	if r.Token != "good" {
		return nil, status.Error(codes.Unauthenticated, "bad token")
	}
	return &EnrollResponse{AgentID: r.Hostname, Certificate: r.CSR}, nil
}

func (echo) Connect(s grpc.BidiStreamingServer[AgentMessage, ServerMessage]) error {
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Batch != nil && len(m.Batch.Records) > 0 {
			if err := s.Send(&ServerMessage{Ack: &Ack{Seq: m.Batch.Records[len(m.Batch.Records)-1].Seq}}); err != nil {
				return err
			}
		}
	}
}

func serve(t *testing.T) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(ServerOptions()...)
	RegisterAgentServer(s, echo{})
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestServiceRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := NewAgentClient(serve(t))

	r, err := c.Enroll(ctx, &EnrollRequest{Token: "good", Hostname: "h1", CSR: []byte("csr")})
	if err != nil {
		t.Fatal(err)
	}
	if r.AgentID != "h1" || string(r.Certificate) != "csr" {
		t.Errorf("Enroll = %+v", r)
	}
	if _, err := c.Enroll(ctx, &EnrollRequest{Token: "bad"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Enroll with a bad token: %v, want Unauthenticated", err)
	}

	st, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := st.Send(&AgentMessage{Batch: &Batch{Records: []Record{{Seq: seq, Kind: KindAlert, Data: json.RawMessage(`{}`)}}}}); err != nil {
			t.Fatal(err)
		}
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.Ack == nil || m.Ack.Seq != seq {
			t.Fatalf("reply to batch %d = %+v, want ack %d", seq, m, seq)
		}
	}
	st.CloseSend()
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("Recv after CloseSend = %v, want EOF", err)
	}
}

// The client sends application/grpc+json even on a connection whose
// default is proto: a plain proto call of the same method fails.
func TestClientForcesJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc := serve(t)
	var out EnrollResponse
	err := cc.Invoke(ctx, EnrollMethod, &EnrollRequest{Token: "good"}, &out)
	if err == nil {
		t.Fatal("a proto-coded call of Enroll succeeded")
	}
	if _, err := NewAgentClient(cc).Enroll(ctx, &EnrollRequest{Token: "good"}); err != nil {
		t.Fatalf("JSON call failed: %v", err)
	}
}

func TestOversizedMessageRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := NewAgentClient(serve(t))
	big := strings.Repeat("x", MaxMessageSize)
	_, err := c.Enroll(ctx, &EnrollRequest{Token: "good", Hostname: big})
	if code := status.Code(err); code != codes.ResourceExhausted {
		t.Errorf("oversized Enroll: %v (code %v), want ResourceExhausted", err, code)
	}
}

func FuzzCodec(f *testing.F) {
	for _, s := range []string{
		`{"hello":{"hostname":"h","version":"1","next_seq":1}}`,
		`{"batch":{"records":[{"seq":1,"kind":"alert","time":"2026-01-01T00:00:00Z","data":{"rule":"R"}}]}}`,
		`{"heartbeat":{"time":"2026-01-01T00:00:00Z","spooled":3}}`,
		`{"result":{"id":"c1","ok":true,"record":{}}}`,
		`{"batch":{"records":[{"seq":-1}]}}`,
		`{"batch":{"records":[{"data":`,
		``, `null`, `[]`, "\x00\x01",
	} {
		f.Add([]byte(s))
	}
	c := encoding.GetCodec(Codec)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m AgentMessage
		if err := c.Unmarshal(b, &m); err != nil {
			if !strings.Contains(err.Error(), "AgentMessage") {
				t.Fatalf("error does not name the message: %v", err)
			}
			return
		}
		_ = m.Validate()
		// What decodes re-encodes.
		if _, err := c.Marshal(&m); err != nil {
			t.Fatalf("re-encoding a decoded message: %v", err)
		}
	})
}

// BenchmarkCodec encodes and decodes a batch of 100 alert records of about
// 2 KB each, the agent channel's common message.
func BenchmarkCodec(b *testing.B) {
	alert := []byte(`{"time":"2026-11-30T04:10:39.54055164Z","type":"alert","rule":"Terminal shell in container","priority":"Warning","source":"rules","tags":["container","mitre_execution","T1059"],"mitre_tactics":["TA0002 Execution"],"mitre_techniques":["T1059.004"],"output":"A shell was spawned in a container with an attached terminal (user=root shell=sh parent=runc cmdline=sh -c echo hello container_id=3f1c2d4e5a6b image=nginx)","count":1,"event":{"time":"2026-11-30T04:10:39.54055164Z","type":"process_exec","syscall":"execve","process":{"pid":3274,"tid":3274,"ppid":2460,"name":"sh","exe":"/usr/bin/sh","args":["sh","-c","echo hello; sleep 1; cat /etc/passwd | head -n 3 > /tmp/out"],"cmd_line":"sh -c echo hello; sleep 1; cat /etc/passwd | head -n 3 > /tmp/out","cwd":"/","uid":0,"gid":0,"euid":0,"egid":0,"auid":4294967295,"cap_effective":2199006478335,"sid":23975,"pgid":1457,"user":"root","group":"root","cgroup_id":1,"mnt_ns":4026531832,"pid_ns":4026531836,"net_ns":4026531833},"parent_process":{"pid":2460,"ppid":1823,"name":"runc","exe":"/usr/bin/runc","cwd":"/","uid":0,"gid":0,"euid":0,"egid":0,"auid":4294967295,"cap_effective":2199006478335,"sid":23975,"pgid":1457,"user":"root","group":"root","start_time":"2026-11-30T04:10:33.49Z"},"ancestors":[{"pid":1800,"name":"containerd-shim","exe":"/usr/bin/containerd-shim-runc-v2"},{"pid":1,"name":"systemd","exe":"/usr/lib/systemd/systemd"}],"ret":0,"workload":{"host":"node-1","container_id":"3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","container_name":"web-1","runtime":"docker","image":"docker.io/library/nginx:1.25","image_digest":"sha256:9b2a5f0e4d1c3b7a8e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a","labels":{"com.docker.compose.project":"shop","com.docker.compose.service":"web"},"started_at":"2026-11-30T04:00:00Z"}}}`)
	m := &AgentMessage{Batch: &Batch{}}
	for i := range 100 {
		m.Batch.Records = append(m.Batch.Records, Record{Seq: uint64(i + 1), Kind: KindAlert, Time: time.Unix(1_800_000_000, 0).UTC(), Data: alert})
	}
	c := encoding.GetCodec(Codec)
	wireBytes, _ := c.Marshal(m)
	b.SetBytes(int64(len(wireBytes)))
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(wireBytes)))
		for b.Loop() {
			if _, err := c.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(wireBytes)))
		for b.Loop() {
			var out AgentMessage
			if err := c.Unmarshal(wireBytes, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(len(alert)), "B/alert")
}

// The codec writes what encoding/json writes, and reads it back the same.
func TestCodecMatchesEncodingJSON(t *testing.T) {
	c := encoding.GetCodec(Codec)
	for _, m := range []any{
		&AgentMessage{Hello: &Hello{Hostname: "h<&>\u2028", Version: "1", NextSeq: 9}},
		&AgentMessage{Batch: &Batch{Records: []Record{{Seq: 1, Kind: KindAlert, Time: time.Unix(1, 5).UTC(), Data: json.RawMessage(`{ "a" : [1, 2] , "b":"<x>" }`)}}}},
		&AgentMessage{Heartbeat: &Heartbeat{Time: time.Unix(2, 0).In(time.FixedZone("X", 3600)), Spooled: 3, Dropped: 1, Events: 1 << 40}},
		&AgentMessage{Result: &CommandResult{ID: "c", OK: false, Error: "no\x00such", Record: json.RawMessage(`null`)}},
		&ServerMessage{Command: &Command{ID: "c", Kind: CommandRules, Rules: []byte("- rule: x\n"), Target: json.RawMessage(`{"pid":1}`)}},
		&ServerMessage{Ack: &Ack{Seq: 1<<64 - 1}},
		&EnrollRequest{Token: "t", CSR: []byte{0, 1, 2, 255}},
	} {
		got, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(m)
		if string(got) != string(want) {
			t.Errorf("codec wrote %s\nencoding/json %s", got, want)
		}
	}
	// Decoding: encoding/json's leniency (names in any case) is kept.
	var m AgentMessage
	if err := c.Unmarshal([]byte(`{"HELLO":{"Hostname":"h","next_seq":3}}`), &m); err != nil || m.Hello == nil || m.Hello.Hostname != "h" || m.Hello.NextSeq != 3 {
		t.Errorf("case-insensitive decode: %+v %v", m.Hello, err)
	}
}
