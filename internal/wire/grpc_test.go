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
