// Package wire is the agent ↔ server protocol: the messages, and the gRPC
// service that carries them over mutual TLS. Messages are Go structs sent
// with a JSON codec registered under the name "json" (content type
// application/grpc+json): the payloads are the JSON records the agent
// already writes (alerts, response records, profiles), so no second schema
// has to be kept in step (docs/decisions/0005-grpc-json-codec.md).
//
// Service vigil.agent.v1.Agent:
//   - Enroll (unary, TLS without a client certificate): a one-time token
//     and a certificate request in, the agent's certificate out.
//   - Connect (bidirectional stream, client certificate required): the
//     agent sends Hello, then Batches of spooled records and Heartbeats;
//     the server answers Hello with an Ack of what it already has, acks
//     each stored batch, and pushes Commands whose Results come back up.
//
// Delivery is exactly once and in order: every spooled record has a
// sequence number; the server stores a batch and the agent's sequence in
// one transaction and acks it; the agent drops records only once acked and
// resends the rest after a reconnect, from the acked sequence on.
//
// Status codes the server answers with (internal/hub):
//   - Enroll: Unauthenticated for a missing or unknown token,
//     PermissionDenied for a token already used or expired ("expired" in
//     the message), InvalidArgument for a bad CSR or hostname (the token
//     is not spent then), Unavailable while the store is down.
//   - Connect: Unauthenticated for a missing client certificate, one not
//     from the server's CA, expired, of an agent not enrolled or revoked,
//     or not the certificate issued at enrollment (re-enrolling is the
//     way back); InvalidArgument when the first message is not Hello or
//     a message has not exactly one field or records out of order;
//     Internal for a message that does not decode; ResourceExhausted for
//     one over MaxMessageSize; FailedPrecondition when the stored
//     sequence moved under the stream (reconnect and resend from the
//     Hello's ack). Each ends that stream only.
//   - The Ack of a batch may be beyond the batch's last record (a resend
//     of records already stored is answered with the stored sequence):
//     the agent drops everything up to the Ack.
//
// wire does no I/O beyond what gRPC does for it.
package wire

import (
	"encoding/json"
	"time"
)

// Record kinds an agent spools.
const (
	KindAlert      = "alert"      // alert.Alert
	KindResponse   = "response"   // response.Record
	KindAsset      = "asset"      // store.Asset (host, container, image)
	KindScan       = "scan"       // Scan
	KindProfile    = "profile"    // Profile
	KindCompliance = "compliance" // store.ComplianceResult
)

// EnrollRequest is sent once, with the token an operator created.
type EnrollRequest struct {
	Token    string `json:"token"`
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	// CSR is a PEM certificate request for the agent's own key (ECDSA
	// P-256); the key never leaves the agent.
	CSR []byte `json:"csr"`
}

// EnrollResponse carries the agent's identity.
type EnrollResponse struct {
	AgentID string `json:"agent_id"`
	// Certificate is the PEM client certificate, its subject CN the
	// AgentID; CA is the PEM CA certificate to verify the server with.
	Certificate []byte `json:"certificate"`
	CA          []byte `json:"ca"`
}

// AgentMessage is one message up the Connect stream; exactly one field is
// set.
type AgentMessage struct {
	Hello     *Hello         `json:"hello,omitempty"`
	Batch     *Batch         `json:"batch,omitempty"`
	Heartbeat *Heartbeat     `json:"heartbeat,omitempty"`
	Result    *CommandResult `json:"result,omitempty"`
}

// Hello opens a stream.
type Hello struct {
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	// NextSeq is the sequence number of the oldest record still spooled.
	NextSeq uint64 `json:"next_seq"`
}

// Batch is consecutive spooled records, oldest first.
type Batch struct {
	Records []Record `json:"records"`
}

// Record is one spooled item.
type Record struct {
	Seq  uint64          `json:"seq"`
	Kind string          `json:"kind"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// Heartbeat says the agent is alive and how it is doing.
type Heartbeat struct {
	Time    time.Time `json:"time"`
	Spooled int       `json:"spooled"` // records waiting for an ack
	Dropped uint64    `json:"dropped"` // records lost to a full spool, ever
	Events  uint64    `json:"events"`  // events seen, ever
}

// ServerMessage is one message down the stream; exactly one field is set.
type ServerMessage struct {
	Ack     *Ack     `json:"ack,omitempty"`
	Command *Command `json:"command,omitempty"`
}

// Ack says every record up to Seq is stored.
type Ack struct {
	Seq uint64 `json:"seq"`
}

// Command kinds.
const (
	// CommandRespond runs Action on Target (response.Target JSON).
	CommandRespond = "respond"
	// CommandUndo undoes the response record RecordID.
	CommandUndo = "undo"
	// CommandSetMode sets Class's profile mode to Mode.
	CommandSetMode = "set_mode"
	// CommandRules replaces the agent's extra rules with Rules (Falco
	// YAML); empty goes back to the built-in set.
	CommandRules = "rules"
	// CommandProfiles asks the agent to send every profile now.
	CommandProfiles = "profiles"
)

// Command is an operator's request pushed to an agent.
type Command struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Actor is who asked (user name or token), recorded by the agent.
	Actor    string          `json:"actor"`
	Action   string          `json:"action,omitempty"`
	Target   json.RawMessage `json:"target,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	RecordID string          `json:"record_id,omitempty"`
	Class    string          `json:"class,omitempty"`
	Mode     string          `json:"mode,omitempty"`
	Rules    []byte          `json:"rules,omitempty"`
}

// CommandResult answers a Command.
type CommandResult struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Record is the response.Record JSON for respond and undo.
	Record json.RawMessage `json:"record,omitempty"`
}

// Scan is an image or host scan an agent reports.
type Scan struct {
	Target      string          `json:"target"`
	ImageDigest string          `json:"image_digest,omitempty"`
	Report      json.RawMessage `json:"report"` // `vigil scan --format json`
}

// Profile is one learned profile an agent reports.
type Profile struct {
	Class string          `json:"class"`
	Mode  string          `json:"mode"`
	Data  json.RawMessage `json:"data"`
}
