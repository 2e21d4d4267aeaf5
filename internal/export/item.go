package export

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/store"
)

// Item kinds.
const (
	KindAlert      = "alert"
	KindResponse   = "response"
	KindFinding    = "finding"
	KindCompliance = "compliance"
)

// Item is one thing to export. Exactly one of Alert, Response, Finding and
// Compliance is set, as Kind says. Items are shared by every sink and never
// modified after itemsOf.
type Item struct {
	Kind       string
	Alert      *store.Alert
	Response   *store.Response
	Finding    *store.Finding
	Scan       *ScanRef // the scan a Finding belongs to
	Compliance *store.ComplianceResult

	once    sync.Once
	decoded *alert.Alert
}

// ScanRef is what a finding's item keeps of its scan.
type ScanRef struct {
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	Target      string    `json:"target"`
	ImageDigest string    `json:"image_digest,omitempty"`
	Source      string    `json:"source"`
}

// AlertItem, ResponseItem, FindingItem and ComplianceItem make items (for
// callers that export rows that do not come in a Batch, and for tests).
func AlertItem(a store.Alert) *Item { return &Item{Kind: KindAlert, Alert: &a} }

// ResponseItem wraps a response row.
func ResponseItem(r store.Response) *Item { return &Item{Kind: KindResponse, Response: &r} }

// FindingItem wraps one finding of scan s.
func FindingItem(s store.Scan, f store.Finding) *Item {
	if f.ScanID == "" {
		f.ScanID = s.ID
	}
	return &Item{Kind: KindFinding, Finding: &f, Scan: &ScanRef{ID: s.ID, Time: s.Time, Target: s.Target, ImageDigest: s.ImageDigest, Source: s.Source}}
}

// ComplianceItem wraps a compliance result.
func ComplianceItem(c store.ComplianceResult) *Item {
	return &Item{Kind: KindCompliance, Compliance: &c}
}

func itemsOf(b *store.Batch) []*Item {
	n := len(b.Alerts) + len(b.Responses) + len(b.Compliance)
	for i := range b.Scans {
		n += len(b.Scans[i].Findings)
	}
	out := make([]*Item, 0, n)
	for _, a := range b.Alerts {
		out = append(out, AlertItem(a))
	}
	for _, r := range b.Responses {
		out = append(out, ResponseItem(r))
	}
	for i := range b.Scans {
		s := &b.Scans[i]
		ref := &ScanRef{ID: s.ID, Time: s.Time, Target: s.Target, ImageDigest: s.ImageDigest, Source: s.Source}
		for _, f := range s.Findings {
			if f.ScanID == "" {
				f.ScanID = s.ID
			}
			out = append(out, &Item{Kind: KindFinding, Finding: &f, Scan: ref})
		}
	}
	for _, c := range b.Compliance {
		out = append(out, ComplianceItem(c))
	}
	return out
}

// Time is when the item's subject happened.
func (it *Item) Time() time.Time {
	switch it.Kind {
	case KindAlert:
		return it.Alert.Time
	case KindResponse:
		return it.Response.Time
	case KindFinding:
		return it.Scan.Time
	case KindCompliance:
		return it.Compliance.Time
	}
	return time.Time{}
}

// Host is the node the item is about ("" when not known).
func (it *Item) Host() string {
	switch it.Kind {
	case KindAlert:
		return it.Alert.Host
	}
	return ""
}

// AgentAlert is the agent's alert decoded from the stored row's Raw JSON,
// nil when the item is not an alert or Raw does not decode. Decoded once,
// by the first sink that asks.
func (it *Item) AgentAlert() *alert.Alert {
	if it.Kind != KindAlert || len(it.Alert.Raw) == 0 {
		return nil
	}
	it.once.Do(func() {
		var a alert.Alert
		if json.Unmarshal(it.Alert.Raw, &a) == nil {
			it.decoded = &a
		}
	})
	return it.decoded
}

// event is the alert's triggering event, nil without one.
func (it *Item) event() *event.Event {
	if a := it.AgentAlert(); a != nil {
		return a.Event
	}
	return nil
}

// nativeDoc is the Vigil JSON shape of an item (syslog plain payload, HEC,
// webhook): {"kind": …, "<kind>": the store row}.
type nativeDoc struct {
	Kind       string                  `json:"kind"`
	Alert      *store.Alert            `json:"alert,omitempty"`
	Response   *store.Response         `json:"response,omitempty"`
	Scan       *ScanRef                `json:"scan,omitempty"`
	Finding    *store.Finding          `json:"finding,omitempty"`
	Compliance *store.ComplianceResult `json:"compliance,omitempty"`
}

// NativeJSON is the item as Vigil's own JSON document.
func (it *Item) NativeJSON() ([]byte, error) {
	return json.Marshal(nativeDoc{Kind: it.Kind, Alert: it.Alert, Response: it.Response, Scan: it.Scan, Finding: it.Finding, Compliance: it.Compliance})
}
