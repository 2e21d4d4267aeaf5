package wire

import (
	"context"
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// Codec is the name the JSON codec is registered under with gRPC; on the
// wire it is the content type application/grpc+json.
const Codec = "json"

// ServiceName is the gRPC service the agent channel is served as.
const ServiceName = "vigil.agent.v1.Agent"

// Full method names, as gRPC sees them.
const (
	EnrollMethod  = "/" + ServiceName + "/Enroll"
	ConnectMethod = "/" + ServiceName + "/Connect"
)

// MaxMessageSize bounds one message in either direction (4 MiB, gRPC's
// own default for receiving). A batch the agent builds must stay under it.
const MaxMessageSize = 4 << 20

func init() { encoding.RegisterCodec(jsonCodec{}) }

// v1Options give go-json-experiment's decoder and encoder encoding/json's
// semantics (the bytes, case-insensitive names, invalid UTF-8 replaced):
// the same messages as encoding/json, decoded in one pass instead of a
// validation pass and a decoding pass (docs/decisions/0005).
var v1Options = jsonv1.DefaultOptionsV1()

// jsonCodec is gRPC's codec for the wire messages: encoding/json, nothing
// else. Messages are plain Go structs (no protobuf), so a peer that sends
// another content type reaches the proto codec and is refused there.
type jsonCodec struct{}

func (jsonCodec) Name() string { return Codec }

func (jsonCodec) Marshal(v any) ([]byte, error) {
	b, err := jsonv2.Marshal(v, v1Options)
	if err != nil {
		return nil, fmt.Errorf("wire: encoding %T: %w", v, err)
	}
	return b, nil
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if err := Unmarshal(data, v); err != nil {
		return err
	}
	return nil
}

// ErrEmpty is a message with no field set.
var ErrEmpty = errors.New("wire: empty message")

// Unmarshal decodes one message the way the codec does: JSON into v, with
// an error naming the message type and the first bytes on failure.
func Unmarshal(data []byte, v any) error {
	if err := jsonv2.Unmarshal(data, v, v1Options); err != nil {
		return fmt.Errorf("wire: decoding %T from %q: %w", v, head(data), err)
	}
	return nil
}

func head(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// Validate checks that exactly one field of m is set.
func (m *AgentMessage) Validate() error {
	n := 0
	for _, set := range []bool{m.Hello != nil, m.Batch != nil, m.Heartbeat != nil, m.Result != nil} {
		if set {
			n++
		}
	}
	switch n {
	case 0:
		return ErrEmpty
	case 1:
		return nil
	}
	return fmt.Errorf("wire: agent message with %d fields set, want 1", n)
}

// AgentServer is what serves the Agent service (internal/hub).
type AgentServer interface {
	// Enroll trades a one-time token and a CSR for a client certificate.
	Enroll(context.Context, *EnrollRequest) (*EnrollResponse, error)
	// Connect is one agent's stream; it returns when the stream ends.
	Connect(grpc.BidiStreamingServer[AgentMessage, ServerMessage]) error
}

// AgentStream is the agent's end of a Connect stream.
type AgentStream = grpc.BidiStreamingClient[AgentMessage, ServerMessage]

// ServiceDesc describes the Agent service to gRPC; it is written by hand
// because there is no .proto (the messages are the structs of this
// package).
var ServiceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*AgentServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Enroll",
		Handler:    enrollHandler,
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Connect",
		Handler:       connectHandler,
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "internal/wire/wire.go",
}

// RegisterAgentServer serves impl on s.
func RegisterAgentServer(s grpc.ServiceRegistrar, impl AgentServer) {
	s.RegisterService(&ServiceDesc, impl)
}

func enrollHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(EnrollRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(AgentServer).Enroll(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: EnrollMethod}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(AgentServer).Enroll(ctx, req.(*EnrollRequest))
	}
	return interceptor(ctx, in, info, handler)
}

func connectHandler(srv any, stream grpc.ServerStream) error {
	return srv.(AgentServer).Connect(&grpc.GenericServerStream[AgentMessage, ServerMessage]{ServerStream: stream})
}

// AgentClient calls the Agent service. Every call is sent with the JSON
// codec, whatever the connection's defaults.
type AgentClient struct {
	cc grpc.ClientConnInterface
}

// NewAgentClient returns a client over cc.
func NewAgentClient(cc grpc.ClientConnInterface) *AgentClient { return &AgentClient{cc: cc} }

// CallOptions are the options every call of the agent channel needs: the
// JSON codec and the message size bound. NewAgentClient adds them itself;
// they are exported for callers that use the ClientConn directly.
func CallOptions() []grpc.CallOption {
	return []grpc.CallOption{
		grpc.CallContentSubtype(Codec),
		grpc.MaxCallRecvMsgSize(MaxMessageSize),
		grpc.MaxCallSendMsgSize(MaxMessageSize),
	}
}

// Enroll presents the token and CSR once.
func (c *AgentClient) Enroll(ctx context.Context, in *EnrollRequest, opts ...grpc.CallOption) (*EnrollResponse, error) {
	out := new(EnrollResponse)
	if err := c.cc.Invoke(ctx, EnrollMethod, in, out, append(CallOptions(), opts...)...); err != nil {
		return nil, err
	}
	return out, nil
}

// Connect opens the agent's stream; the connection must carry the agent's
// client certificate. Cancel ctx to end it.
func (c *AgentClient) Connect(ctx context.Context, opts ...grpc.CallOption) (AgentStream, error) {
	s, err := c.cc.NewStream(ctx, &ServiceDesc.Streams[0], ConnectMethod, append(CallOptions(), opts...)...)
	if err != nil {
		return nil, err
	}
	return &grpc.GenericClientStream[AgentMessage, ServerMessage]{ClientStream: s}, nil
}

// ServerOptions are the gRPC server options the agent channel needs: the
// message size bounds. A larger message is refused by gRPC
// (ResourceExhausted) and ends only the stream that sent it.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
	}
}
