package export

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// appendJSON writes what encoding/json writes (with HTML escaping off).
func stdJSON(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, it := range testItems(t) {
		for _, v := range []map[string]any{ECS(it), OCSF(it)} {
			got, err := appendJSON(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			if want := stdJSON(t, v); !bytes.Equal(got, want) {
				t.Errorf("%s:\n got %s\nwant %s", it.Kind, got, want)
			}
		}
	}
	for _, v := range []any{
		map[string]any{"f": 1e21, "g": 1e-7, "h": 0.5, "i": -3.0, "n": nil, "s": []string{"a<b>&", "\u2028\x01\xff"}, "l": []map[string]any{{}, nil}},
		int64(-1), uint64(1 << 63), int32(7), true, []string(nil), map[string]any(nil),
	} {
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdJSON(t, v); !bytes.Equal(got, want) {
			t.Errorf("%#v:\n got %s\nwant %s", v, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", "ünï", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, s)
		want := stdJSON(t, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || utf8.ValidString(s) && back != s {
			t.Fatalf("%q does not read back: %q %v", s, back, err)
		}
	})
}
