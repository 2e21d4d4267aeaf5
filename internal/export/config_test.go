package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseSink(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want SinkConfig
	}{
		{"syslog+tls://siem.example:6514?format=cef&ca=/etc/ca.pem&name=soc",
			SinkConfig{Name: "soc", Type: TypeSyslog, Network: "tls", Address: "siem.example:6514", Format: "cef", TLS: TLSConfig{CA: "/etc/ca.pem"}}},
		{"syslog://10.0.0.1", SinkConfig{Type: TypeSyslog, Network: "tcp", Address: "10.0.0.1:514"}},
		{"syslog+tls://[::1]", SinkConfig{Type: TypeSyslog, Network: "tls", Address: "[::1]:6514"}},
		{"syslog+udp://h:5514?facility=4", SinkConfig{Type: TypeSyslog, Network: "udp", Address: "h:5514", Facility: 4}},
		{"splunk-hec://hec.example:8088?token_env=HEC&index=sec&sourcetype=vigil",
			SinkConfig{Type: TypeSplunk, URL: "https://hec.example:8088", TokenEnv: "HEC", Index: "sec", Sourcetype: "vigil"}},
		{"splunk-hec+http://127.0.0.1:8088/prefix?token=abc&batch=50&timeout=3s",
			SinkConfig{Type: TypeSplunk, URL: "http://127.0.0.1:8088/prefix", Token: "abc", Batch: 50, Timeout: 3 * time.Second}},
		{"elasticsearch://elastic:s3cret@es:9200?index_prefix=cwpp&data_stream=true",
			SinkConfig{Type: TypeElastic, URL: "https://es:9200", Username: "elastic", Password: "s3cret", IndexPrefix: "cwpp", DataStream: true}},
		{"opensearch+http://os:9200?api_key_env=KEY&insecure=true",
			SinkConfig{Type: TypeElastic, URL: "http://os:9200", APIKeyEnv: "KEY", TLS: TLSConfig{Insecure: true}}},
		{"ocsf-file:/var/log/vigil/ocsf.jsonl?max_size=1048576&max_files=3",
			SinkConfig{Type: TypeOCSFFile, Path: "/var/log/vigil/ocsf.jsonl", MaxSize: 1 << 20, MaxFiles: 3}},
		{"ocsf-file:///tmp/o.jsonl", SinkConfig{Type: TypeOCSFFile, Path: "/tmp/o.jsonl"}},
		{"ocsf+https://collector/ingest?format=array", SinkConfig{Type: TypeOCSFHTTP, URL: "https://collector/ingest", Format: "array"}},
		{"webhook+https://hooks.example/x?secret_env=HOOK&buffer=100&backoff_min=1s&max_attempts=5",
			SinkConfig{Type: TypeWebhook, URL: "https://hooks.example/x", SecretEnv: "HOOK", Buffer: 100, BackoffMin: time.Second, MaxAttempts: 5}},
	} {
		got, err := ParseSink(tc.spec)
		if err != nil {
			t.Errorf("ParseSink(%q): %v", tc.spec, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("ParseSink(%q) (-want +got):\n%s", tc.spec, d)
		}
	}
}

func TestParseSinkErrors(t *testing.T) {
	for _, spec := range []string{
		"", "syslog", "kafka://h:9092", "syslog+tcp://", "syslog+tcp://h:1?bogus=1",
		"syslog+tcp://h:1?buffer=ten", "ocsf-file:", "ocsf-file:/x?max_size=big", "webhook+https://h/?timeout=forever",
		"splunk-hec://%zz",
	} {
		if c, err := ParseSink(spec); err == nil {
			t.Errorf("ParseSink(%q) = %+v, want an error", spec, c)
		}
	}
	// Secrets stay out of error messages.
	_, err := ParseSink("splunk-hec://h?token=topsecret&nope=1")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error %v: want one that hides the token", err)
	}
	_, err = ParseSink("elasticsearch://u:hunter2@h?nope=1")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v: want one that hides the password", err)
	}
}

func TestLoadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "export.yaml")
	os.WriteFile(p, []byte(`
sinks:
  - spec: syslog+tls://siem:6514?format=cef
    name: soc
    tls: {ca: /etc/ca.pem}
    buffer: 500
  - type: elasticsearch
    url: https://es:9200
    api_key_env: ES_KEY
    timeout: 5s
    backoff_max: 1m
  - type: ocsf-file
    path: /var/log/vigil/ocsf.jsonl
    max_size: 1000000
`), 0o600)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Sinks: []SinkConfig{
		{Name: "soc", Type: TypeSyslog, Network: "tls", Address: "siem:6514", Format: "cef", TLS: TLSConfig{CA: "/etc/ca.pem"}, Buffer: 500},
		{Type: TypeElastic, URL: "https://es:9200", APIKeyEnv: "ES_KEY", Timeout: 5 * time.Second, BackoffMax: time.Minute},
		{Type: TypeOCSFFile, Path: "/var/log/vigil/ocsf.jsonl", MaxSize: 1000000},
	}}
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("LoadConfig (-want +got):\n%s", d)
	}
	for _, bad := range []string{
		"sinks:\n  - type: syslog\n    adress: h:1\n", // misspelt field
		"sinks:\n  - type: syslog\n    address: h:1\n    format: leef\n",
		"sinks:\n  - spec: nope://x\n",
		"sinks: [",
	} {
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("LoadConfig(%q): err %v, want one naming the file", bad, err)
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func FuzzParseSink(f *testing.F) {
	for _, s := range []string{
		"syslog+tls://siem.example:6514?format=cef&ca=/etc/ca.pem",
		"splunk-hec://hec:8088?token=x", "elasticsearch://u:p@es:9200", "ocsf-file:/tmp/x?max_size=10",
		"webhook+https://h/p?secret=s", "ocsf+http://[::1]:80/x?format=array", "syslog+udp://h", "%", "a:b:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := ParseSink(spec)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if c.Type == "" {
			t.Fatalf("ParseSink(%q) succeeded without a type", spec)
		}
		// Defaults either accept the sink or explain why not; never panic.
		if _, err := c.withDefaults(); err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

func TestLoadMergesSpecsAndFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "export.yaml")
	os.WriteFile(p, []byte("sinks:\n  - type: ocsf-file\n    path: /tmp/x.jsonl\n"), 0o600)
	c, err := Load([]string{"syslog+tcp://h:514?format=cef"}, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 2 || c.Sinks[0].Type != TypeOCSFFile || c.Sinks[1].Format != "cef" {
		t.Errorf("Load = %+v", c)
	}
	// A spec that parses but cannot work is refused here, not at New.
	if _, err := Load([]string{"splunk-hec://h:8088"}, ""); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("spec without a token: %v", err)
	}
	if c, err := Load(nil, ""); err != nil || len(c.Sinks) != 0 {
		t.Errorf("no sinks: %+v %v", c, err)
	}
}
