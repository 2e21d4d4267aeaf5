package frameworks

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseEvidence feeds the evidence parsers (files a user hands to
// `vigil report compliance`) and scores and renders whatever they accept:
// no panic, and the HTML never carries the input as markup.
func FuzzParseEvidence(f *testing.F) {
	for _, s := range []string{
		`{"benchmark":"cis-docker","host":"h","results":[{"id":"5.4","status":"fail","evidence":"<script>"}]}`,
		`[{"benchmark":"cis-debian-12","results":[{"id":"1.1.1.1","status":"pass"}]}]`,
		`{"time":"2026-11-30T07:00:00Z","rule":"Terminal shell in container","mitre_tactics":["TA0002 Execution"],"count":2}` + "\n" + `{"rule":"x","source":"fim"}`,
		`{"alerts":[{"rule":"Crypto-miner started","responses":["kill: done"]}]}`,
		`{"schema":"vigil.scan/v1","target":{"name":"img"},"summary":{"total":3,"kev":1,"critical":1}}`,
		`{"scans":[{"target":"a","summary":{"findings":1,"high":1}}]}`,
		`{"summary":{"added":1,"removed":0,"changed":2},"added":[{"path":"/etc/x"}],"changed":[]}`,
		`{"tampered":true}`,
		`[]`, `null`, `{}`, "",
	} {
		f.Add([]byte(s))
	}
	c := Default()
	f.Fuzz(func(t *testing.T, b []byte) {
		ev := &Evidence{}
		if reps, err := ParseBench(b); err == nil {
			ev.Bench = reps
		}
		if as, err := ParseAlerts(b); err == nil {
			ev.Alerts, ev.AlertsGiven = as, true
		}
		if ss, err := ParseScan(b); err == nil {
			ev.Scans = ss
		}
		if run, err := ParseFIM(b); err == nil {
			ev.FIM = []FIMRun{run}
		}
		rep, err := c.Score(PCI, ev, Options{Host: "h", Time: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := WriteHTML(&out, rep); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out.Bytes(), []byte("<script")) {
			t.Fatalf("input rendered as a script element: %q", b)
		}
		if err := WriteJSON(&out, rep); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkScore(b *testing.B) {
	c := Default()
	ev := benchEvidence()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Score(NIST, ev, Options{Host: "h", Time: time.Unix(0, 0)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteHTML(b *testing.B) {
	rep, err := Default().Score(PCI, benchEvidence(), Options{Host: "h", Time: time.Unix(0, 0)})
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if err := WriteHTML(&out, rep); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len()), "bytes/report")
}
