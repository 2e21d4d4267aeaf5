package fim

import (
	"errors"
	"strings"
	"testing"
)

func TestParseConfigYAML(t *testing.T) {
	c, err := ParseConfig([]byte(`
groups:
  MINE: p+u+g+sha256
watch:
  - path: /etc
    attrs: MINE+sha512-g
  - path: /etc/ssl
    attrs: [perm, uid]
    depth: 1
  - path: /var/log
    attrs: ">"
exclude:
  - /etc/skip
  - "re:\\.swp$"
  - "re:\\.d$"
  - "re:^/etc/(x|y)+z$"
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		rule  string
		attrs Attr
		ok    bool
	}{
		{"/etc", "/etc", AttrPerm | AttrUID | AttrSHA256 | AttrSHA512, true},
		{"/etc/passwd", "/etc", AttrPerm | AttrUID | AttrSHA256 | AttrSHA512, true},
		{"/etc/ssl", "/etc/ssl", AttrPerm | AttrUID, true},
		{"/etc/ssl/certs", "/etc/ssl", AttrPerm | AttrUID, true},
		{"/etc/ssl/certs/x.pem", "", 0, false}, // beyond depth 1
		{"/etc/skip", "", 0, false},
		{"/etc/skip/below", "", 0, false}, // parent excluded
		{"/etc/a.swp", "", 0, false},
		{"/etc/a.swp/below", "", 0, false}, // a parent matches the regular expression
		{"/etc/x.d", "", 0, false},
		{"/etc/x.d/a/b", "", 0, false},
		{"/etc/x.dd", "/etc", AttrPerm | AttrUID | AttrSHA256 | AttrSHA512, true},
		{"/etc/xyxz/q", "", 0, false},
		{"/etc/xyxzq", "/etc", AttrPerm | AttrUID | AttrSHA256 | AttrSHA512, true},
		{"/etcetera", "", 0, false},
		{"/usr/bin/ls", "", 0, false},
		{"/var/log/syslog", "/var/log", DefaultGroups[">"], true},
		{"relative", "", 0, false},
	}
	for _, tt := range tests {
		r, ok := c.Match(tt.path)
		if ok != tt.ok || r.Name != tt.rule || r.Attrs != tt.attrs {
			t.Errorf("Match(%q) = %q %v %v, want %q %v %v", tt.path, r.Name, r.Attrs, ok, tt.rule, tt.attrs, tt.ok)
		}
	}
	if c.Database != DefaultDatabase || c.Key != DefaultKey {
		t.Errorf("defaults: %q %q", c.Database, c.Key)
	}
}

func TestParseConfigUnknownAttribute(t *testing.T) {
	for _, tt := range []struct {
		name, src, attr string
		line            int
	}{
		{"x.yaml", "watch:\n  - path: /etc\n    attrs: p+md6\n", "md6", 3},
		{"x.yaml", "groups:\n  G: p+bogus\n", "bogus", 2},
		{"x.yaml", "watch:\n  - path: /etc\n    attrs: [perm, nope]\n", "nope", 3},
		{"aide.conf", "# c\nG = p+u\n/etc G+zz\n", "zz", 3},
	} {
		_, err := ParseConfig([]byte(tt.src), tt.name)
		var ue *UnknownAttrError
		var ce *ConfigError
		if !errors.As(err, &ue) || ue.Name != tt.attr || !errors.As(err, &ce) || ce.Line != tt.line {
			t.Errorf("%s %q: err = %v, want unknown attribute %q at line %d", tt.name, tt.src, err, tt.attr, tt.line)
			continue
		}
		if !strings.Contains(err.Error(), tt.name+":") || !strings.Contains(err.Error(), tt.attr) {
			t.Errorf("message %q does not name the file and attribute", err)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, src := range []string{
		"watch:\n  - path: etc\n    attrs: p\n",
		"watch:\n  - path: /etc\n",
		"watch:\n  - path: /etc\n    attrs: p\n    depth: -2\n",
		"watch:\n  - {path: /etc, attrs: p}\n  - {path: /etc/, attrs: u}\n",
		"exclude:\n  - \"re:(\"\n",
		"exclude:\n  - \"[\"\n",
		"groups:\n  sha256: p\n",
		"watch: [",
		"exlude: [/x]\n",
		"watch:\n  - {path: /etc, attrs: p, dept: 1}\n",
	} {
		if _, err := ParseConfig([]byte(src), "x.yaml"); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}

func TestParseConfigAIDE(t *testing.T) {
	c, err := ParseConfig([]byte(`
database_in=file:/tmp/db
database_out=file:/tmp/db.new
report_format=json
Mine = p+u+g+sha256
/srv/a Mine
=/srv/b R
/srv/c$ L
!/srv/a/tmp
!/srv/a/.*\.log$
`), "aide.conf")
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "/tmp/db" {
		t.Errorf("database %q", c.Database)
	}
	for p, want := range map[string]bool{"/srv/a/x": true, "/srv/a/tmp": false, "/srv/a/tmp/y": false, "/srv/a/d/z.log": false,
		"/srv/b": true, "/srv/b/x": false, "/srv/c": true, "/srv/c/x": false} {
		if _, ok := c.Match(p); ok != want {
			t.Errorf("Match(%q) = %v, want %v", p, ok, want)
		}
	}
	for _, bad := range []string{"@@define X y\n", "/srv/(a|b) p\n", "/srv f p\n", "nonsense\n", "database=http://x\n"} {
		if _, err := ParseConfig([]byte(bad), "aide.conf"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseAttrs(t *testing.T) {
	for expr, want := range map[string]Attr{
		"p+u":                AttrPerm | AttrUID,
		"NORMAL-ctime-mtime": DefaultGroups["NORMAL"] &^ (AttrCtime | AttrMtime),
		">":                  DefaultGroups[">"],
		">+sha256":           DefaultGroups[">"] | AttrSHA256,
		"E":                  0,
		"X":                  AttrACL | AttrXattrs | AttrCaps,
		"S":                  AttrGrowing,
	} {
		got, err := ParseAttrs(expr, nil)
		if err != nil || got != want {
			t.Errorf("ParseAttrs(%q) = %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{"", "p++x", ">x", "md5"} {
		if _, err := ParseAttrs(bad, nil); err == nil {
			t.Errorf("ParseAttrs(%q): no error", bad)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if r, ok := c.Match("/usr/bin/ls"); !ok || r.Attrs&AttrSHA256 == 0 {
		t.Errorf("/usr/bin/ls: %v %v", r, ok)
	}
	if _, ok := c.Match("/etc/mtab"); ok {
		t.Error("/etc/mtab is watched")
	}
	if r, ok := c.Match("/var/log/syslog"); !ok || r.Attrs&AttrGrowing == 0 {
		t.Errorf("/var/log/syslog: %v %v", r, ok)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("watch:\n  - {path: /etc, attrs: NORMAL}\nexclude: [/etc/x, 're:a+']\n"), false)
	f.Add([]byte("G = p+u\n/etc G\n!/etc/x\n=/srv R\n"), true)
	f.Add([]byte("groups: {A: p, B: A+u}\nwatch: [{path: /, attrs: [B, sha512], depth: 2}]\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, aide bool) {
		name := "f.yaml"
		if aide {
			name = "f.conf"
		}
		c, err := ParseConfig(data, name)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, r := range c.Rules {
			c.Match(r.Path)
			c.Match(r.Path + "/a/b")
		}
	})
}
