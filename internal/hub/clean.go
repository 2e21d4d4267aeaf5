package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// Agent text is cleaned before it is stored (store.CleanText says why).

func clean(s string) string                      { return store.CleanText(s) }
func cleanAll(ss []string) []string              { return store.CleanTexts(ss) }
func cleanRaw(b json.RawMessage) json.RawMessage { return store.CleanJSON(b) }

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
