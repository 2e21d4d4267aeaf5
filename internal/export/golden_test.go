package export

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/version"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// TestGolden keeps one rendering of the test batch per format under
// testdata/golden, so a change of output shows in review; rewrite with
// go test ./internal/export -run TestGolden -update.
func TestGolden(t *testing.T) {
	v := version.Version
	version.Version = "dev" // as a plain go test build has it
	defer func() { version.Version = v }()
	items := testItems(t)
	es := &elasticSink{httpPoster: &httpPoster{cfg: SinkConfig{IndexPrefix: "vigil"}}}
	hec := SinkConfig{Source: "vigil", Format: "vigil", Index: "security"}
	render := map[string]func(*Item) ([]byte, error){
		"cef.txt":         func(it *Item) ([]byte, error) { return []byte(CEF(it)), nil },
		"syslog-json.txt": func(it *Item) ([]byte, error) { return Syslog(it, 16, "vigil", false) },
		"splunk-hec.ndjson": func(it *Item) ([]byte, error) {
			b, err := encodeHEC(nil, it, &hec)
			return bytes.TrimSuffix(b, []byte("\n")), err
		},
		"elastic-bulk.ndjson": func(it *Item) ([]byte, error) {
			b, err := es.encodeBulk(nil, it)
			return bytes.TrimSuffix(b, []byte("\n")), err
		},
		"ocsf.jsonl": OCSFJSON,
	}
	for name, fn := range render {
		var out bytes.Buffer
		for _, it := range items {
			b, err := fn(it)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(b)
			out.WriteByte('\n')
		}
		p := filepath.Join("testdata", "golden", name)
		if *update {
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%s differs from %s (run with -update if the change is meant):\n%s", name, p, out.Bytes())
		}
	}
}
