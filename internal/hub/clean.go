package hub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// PostgreSQL refuses NUL in text and the escape \u0000 in JSON
// (SQLSTATE 22021, 22P05): one such string from an agent would fail its
// batch on every retry and wedge the agent. Agent text is therefore
// cleaned before it is stored: NUL becomes U+FFFD.

const replacement = "\uFFFD"

func clean(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", replacement)
}

func cleanAll(ss []string) []string {
	for i, s := range ss {
		ss[i] = clean(s)
	}
	return ss
}

var nulEscape = []byte(`\u0000`)

// cleanRaw replaces the JSON escape \u0000 with \ufffd (the escaped text
// `\\u0000` changes too, harmlessly: it stays valid JSON).
func cleanRaw(b json.RawMessage) json.RawMessage {
	if !bytes.Contains(b, nulEscape) {
		return b
	}
	return bytes.ReplaceAll(b, nulEscape, []byte(`\ufffd`))
}

func cleanLabels(m map[string]string) map[string]string {
	dirty := false
	for k, v := range m {
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
			dirty = true
			break
		}
	}
	if !dirty {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[clean(k)] = clean(v)
	}
	return out
}

// dedupKey is the stored form of an agent's alert.Key: a hash, so it is
// short, indexable and free of the NUL separators alert.Key uses.
func dedupKey(agentID, key string) string {
	h := sha256.New()
	h.Write([]byte(agentID))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

func cleanAlert(a *store.Alert) {
	a.Host, a.Rule, a.Priority, a.Source, a.Output = clean(a.Host), clean(a.Rule), clean(a.Priority), clean(a.Source), clean(a.Output)
	a.ContainerID, a.ContainerName, a.Image = clean(a.ContainerID), clean(a.ContainerName), clean(a.Image)
	a.Namespace, a.Pod, a.Class = clean(a.Namespace), clean(a.Pod), clean(a.Class)
	a.Tactics, a.Techniques, a.Responses = cleanAll(a.Tactics), cleanAll(a.Techniques), cleanAll(a.Responses)
	a.Raw = cleanRaw(a.Raw)
}
