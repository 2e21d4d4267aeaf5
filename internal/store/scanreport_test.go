package store_test

import (
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/report"
	"github.com/vigil-cwpp/vigil/internal/store"
)

func TestScanSchemaIsTheReports(t *testing.T) {
	if store.ScanSchema != report.JSONSchema {
		t.Errorf("store reads %q, vigil scan writes %q", store.ScanSchema, report.JSONSchema)
	}
}

func TestParseScanReportErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{``, "report: empty"},
		{`{"schema":"other/v9"}`, `schema "other/v9"`},
		{`{"schema":"vigil.scan/v1","target":{"name":"x"},"findings":[{"id":"X"}]}`, "findings[0].package.name"},
		{`{"schema":"vigil.scan/v1","target":{"name":"x"},"findings":[{"id":7}]}`, "findings.id: a JSON number"},
		{`{"schema":`, "report:"},
	} {
		if _, err := store.ParseScanReport([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseScanReport(%q) = %v, want an error containing %q", tc.doc, err, tc.want)
		}
	}
}

func TestParseScanReportCleansNUL(t *testing.T) {
	sc, err := store.ParseScanReport([]byte(`{"schema":"vigil.scan/v1","target":{"name":"a\u0000b"},"findings":[{"id":"CVE-1","severity":"high","package":{"name":"p\u0000","version":"1"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(sc.Target, 0) || strings.ContainsRune(sc.Findings[0].Package, 0) || strings.Contains(string(sc.Report), `\u0000`) {
		t.Errorf("NUL kept: %q %q %s", sc.Target, sc.Findings[0].Package, sc.Report)
	}
	if sc.Summary.Findings != 1 || sc.Summary.High != 1 || sc.Findings[0].Severity != "HIGH" {
		t.Errorf("summary %+v findings %+v", sc.Summary, sc.Findings)
	}
}
