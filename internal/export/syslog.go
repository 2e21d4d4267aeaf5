package export

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sdID is the structured-data ID of Vigil's parameters. 32473 is the
// private enterprise number RFC 5612 reserves for documentation: Vigil has
// no number of its own yet.
const sdID = "vigil@32473"

// maxUDPMessage is the largest syslog message sent over UDP: an IPv4
// datagram's payload.
const maxUDPMessage = 65507

// Syslog renders an item as an RFC 5424 message (without framing):
//
//	<PRI>1 TIMESTAMP HOST APP - MSGID [vigil@32473 k="v" …] MSG
//
// MSG is the CEF line when cef is set, else the item's Vigil JSON.
func Syslog(it *Item, facility int, app string, cef bool) ([]byte, error) {
	f := factsOf(it)
	var b strings.Builder
	b.Grow(1024)
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(facility*8 + f.syslogSev))
	b.WriteString(">1 ")
	b.WriteString(it.Time().UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	b.WriteByte(' ')
	b.WriteString(header(f.host, 255))
	b.WriteByte(' ')
	b.WriteString(header(app, 48))
	b.WriteString(" - ")
	b.WriteString(it.Kind)
	b.WriteByte(' ')
	if cef {
		b.WriteString("- ")
		b.WriteString(CEF(it))
		return []byte(b.String()), nil
	}
	b.WriteByte('[')
	b.WriteString(sdID)
	sd := func(k, v string) {
		if v == "" {
			return
		}
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteString(`="`)
		for i := 0; i < len(v); i++ {
			switch c := v[i]; c {
			case '"', '\\', ']':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n', '\r':
				b.WriteByte(' ')
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	sd("id", f.id)
	sd("agent", f.agentID)
	sd("rule", f.rule)
	sd("priority", f.priority)
	sd("technique", strings.Join(f.techniques, ","))
	sd("container", f.container)
	sd("image", f.image)
	sd("namespace", f.namespace)
	sd("action", f.action)
	sd("outcome", f.outcome)
	sd("vuln", f.vuln)
	sd("package", f.pkg)
	if f.kev {
		sd("kev", "true")
	}
	b.WriteString("] ")
	js, err := it.NativeJSON()
	if err != nil {
		return nil, err
	}
	b.Write(js)
	return []byte(b.String()), nil
}

// header makes an RFC 5424 header field: printable US-ASCII, no spaces,
// at most n characters, "-" when empty.
func header(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; c > 32 && c < 127 {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// syslogSink sends RFC 5424 messages over TCP or TLS with octet-counting
// framing (RFC 6587 3.4.1, RFC 5425) or one per UDP datagram (RFC 5426).
type syslogSink struct {
	cfg  SinkConfig
	tls  *tls.Config
	mu   sync.Mutex
	conn net.Conn
}

func newSyslog(c SinkConfig) (*syslogSink, error) {
	s := &syslogSink{cfg: c}
	if c.Network == "tls" {
		host, _, _ := net.SplitHostPort(c.Address)
		tc, err := c.TLS.config(host)
		if err != nil {
			return nil, err
		}
		s.tls = tc
	}
	return s, nil
}

func (s *syslogSink) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: s.cfg.Timeout}
	switch s.cfg.Network {
	case "tls":
		td := &tls.Dialer{NetDialer: d, Config: s.tls}
		return td.DialContext(ctx, "tcp", s.cfg.Address)
	case "udp":
		return d.DialContext(ctx, "udp", s.cfg.Address)
	}
	return d.DialContext(ctx, "tcp", s.cfg.Address)
}

func (s *syslogSink) send(ctx context.Context, items []*Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []byte
	for _, it := range items {
		msg, err := Syslog(it, s.cfg.Facility, s.cfg.AppName, s.cfg.Format == "cef")
		if err != nil {
			return permanentError(len(items), fmt.Errorf("encoding: %w", err))
		}
		if s.cfg.Network == "udp" && len(msg) > maxUDPMessage {
			// It would never fit a datagram: retrying cannot help.
			return permanentError(len(items), fmt.Errorf("%d-byte message does not fit a UDP datagram (use TCP, or format=cef)", len(msg)))
		}
		switch {
		case s.cfg.Network == "udp":
			buf = append(buf, msg...)
		case s.cfg.Framing == "newline":
			buf = append(buf, msg...)
			buf = append(buf, '\n')
		default:
			buf = strconv.AppendInt(buf, int64(len(msg)), 10)
			buf = append(buf, ' ')
			buf = append(buf, msg...)
		}
	}
	if s.conn == nil {
		c, err := s.dial(ctx)
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", s.cfg.Address, err)
		}
		s.conn = c
	}
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetWriteDeadline(dl)
	} else {
		s.conn.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	}
	// TCP gives no receipt: a write into a connection the peer closed may
	// succeed once. Probe for a close before writing so that a receiver
	// restart is seen here instead of losing the batch.
	if s.cfg.Network != "udp" && peerClosed(s.conn) {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("syslog receiver %s closed the connection", s.cfg.Address)
	}
	if _, err := s.conn.Write(buf); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("writing to %s: %w", s.cfg.Address, err)
	}
	return nil
}

// peerClosed reports whether the peer has closed c (a read returns at once
// with EOF or an error); syslog receivers never write, so any byte or
// error means the stream is unusable.
func peerClosed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var one [1]byte
	_, err := c.Read(one[:])
	c.SetReadDeadline(time.Time{})
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

func (s *syslogSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		err := s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}
