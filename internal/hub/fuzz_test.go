package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

var kinds = []string{wire.KindAlert, wire.KindResponse, wire.KindAsset, wire.KindScan, wire.KindProfile, wire.KindCompliance, "bogus"}

// FuzzRecord feeds arbitrary data of every kind through the conversion
// into store rows: an error names the record's sequence and kind, and
// nothing panics.
func FuzzRecord(f *testing.F) {
	t0 := time.Unix(1_800_000_000, 0)
	seeds := []string{
		mustJSON(mkAlert("R", "c1", "/bin/sh", t0, "T1059")),
		`{"rule":"R","priority":"bogus","count":-5,"aggregate":true,"event":{"workload":{"container_id":"c","pod_name":"p-7d9f8b6c5-abcde","pod_namespace":"ns","pod_labels":{"pod-template-hash":"7d9f8b6c5"}}}}`,
		`{"rule":"R","event":null}`,
		`{"id":"r","action":"kill","target":{"pid":-1},"automatic":true}`,
		`{"kind":"container","id":"c","labels":{"a":"b"}}`,
		`{"target":"x","report":{"schema":"vigil.scan/v1","findings":[{"id":"CVE-1","package":{"name":"p"},"kev":{},"cvss":{"base_score":9.8}}]}}`,
		`{"target":"x","report":{"schema":"vigil.scan/v1","findings":[{"id":""}]}}`,
		`{"class":"docker.io/library/nginx","mode":"protect","data":{}}`,
		`{"benchmark":"cis","check_id":"1.1","status":"pass"}`,
		`null`, `[]`, `"x"`, `{`, ``,
		`{"rule":"R\u0000","output":"\u0000","event":{"workload":{"container_id":"c\u0000","host":"h\u0000"}}}`,
		`{"kind":"host","id":"h\u0000","labels":{"\u0000":"\u0000"},"data":{"x":"\u0000"}}`,
	}
	if b, err := os.ReadFile("../report/testdata/scan.golden.json"); err == nil {
		seeds = append(seeds, mustJSON(wire.Scan{Target: "t", Report: b}))
	}
	for _, s := range seeds {
		for k := range kinds {
			f.Add(uint8(k), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		g := newIngester(New(Options{}), store.Agent{ID: "agent-1", Hostname: "h"})
		kind := kinds[int(k)%len(kinds)]
		r := wire.Record{Seq: 77, Kind: kind, Time: t0, Data: data}
		b := &store.Batch{}
		g.newRows, g.updates, g.touched = nil, map[string]int{}, map[string]*store.Incident{}
		err := g.record(b, &r)
		if err != nil {
			if want := fmt.Sprintf("record 77 (%s)", kind); !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %s", err, want)
			}
			return
		}
		// A second time: a repeat is folded, never a panic.
		if err := g.record(b, &wire.Record{Seq: 78, Kind: kind, Time: t0, Data: data}); err != nil {
			t.Fatalf("the same data failed the second time: %v", err)
		}
		// What was accepted must be storable: JSON where JSON is kept, and
		// no NUL anywhere (PostgreSQL refuses it in text and jsonb).
		for _, a := range b.Alerts {
			if !json.Valid(a.Raw) {
				t.Fatalf("alert raw is not JSON: %q", a.Raw)
			}
			if strings.Contains(a.DedupKey, "\x00") {
				t.Fatalf("dedup key with NUL: %q", a.DedupKey)
			}
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("batch does not encode: %v", err)
		}
		if bytes.Contains(out, []byte(`\u0000`)) {
			t.Fatalf("NUL in a converted row: %s", out)
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// The hub decodes only part of an alert: its dedup key must be alert.Key
// of the whole alert, for every recorded event.
func TestAlertDocKeyMatchesAlertKey(t *testing.T) {
	f, err := os.ReadFile("../agent/testdata/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range bytes.Split(bytes.TrimSpace(f), []byte("\n")) {
		var ev event.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if i%3 == 0 {
			ev.Ancestors = append(ev.Ancestors, event.Ancestor{PID: 1, Name: "init", Exe: "/sbin/init"})
		}
		if i%5 == 0 {
			ev.Workload = &event.Workload{Host: "h", ContainerID: "c", PodName: "p-7d9f8b6c5-abcde", PodNamespace: "ns"}
		}
		a := alert.Alert{Rule: fmt.Sprintf("R%d", i%7), Event: &ev}
		doc, _ := json.Marshal(&a)
		var d alertDoc
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		if got, want := alert.Key(d.alert()), alert.Key(&a); got != want {
			t.Fatalf("line %d: key %q, want %q", i+1, got, want)
		}
		n++
	}
	if n < 100 {
		t.Fatalf("only %d events checked", n)
	}
}
