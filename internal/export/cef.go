package export

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vigil-cwpp/vigil/internal/version"
)

// CEF (ArcSight Common Event Format, version 0):
//
//	CEF:0|Vigil|Vigil|<version>|<signature id>|<name>|<severity 0-10>|<extension>
//
// Header fields escape \ and |; extension values escape \ and = and
// write newlines as \n (\r as \r); extension keys are letters and digits.

// cefHeader escapes a header field; newlines become spaces (they are not
// allowed in a header).
func cefHeader(b *strings.Builder, s string) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '|':
			b.WriteString(`\|`)
		case '\n', '\r':
			b.WriteByte(' ')
		case utf8.RuneError:
			if n == 1 {
				b.WriteRune(utf8.RuneError)
				continue
			}
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
}

// cefValue escapes an extension value.
func cefValue(b *strings.Builder, s string) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '=':
			b.WriteString(`\=`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r == utf8.RuneError && n == 1 {
				b.WriteRune(utf8.RuneError)
				continue
			}
			b.WriteRune(r)
		}
	}
}

// cefUnescapeValue reverses cefValue (for tests and receivers).
func cefUnescapeValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// cefSeverity maps Falco's priority rank (0 emergency … 7 debug) to CEF's
// 0-10 scale.
func cefSeverity(rank int) int {
	m := [...]int{10, 9, 8, 7, 6, 4, 3, 1}
	if rank < 0 || rank >= len(m) {
		return 5
	}
	return m[rank]
}

// vulnCEFSeverity maps a vulnerability severity to CEF's scale.
func vulnCEFSeverity(s string) int {
	switch strings.ToLower(s) {
	case "critical":
		return 10
	case "high":
		return 8
	case "medium", "moderate":
		return 5
	case "low":
		return 3
	}
	return 1
}

type cefExt struct {
	b     *strings.Builder
	first bool
}

func (e *cefExt) add(key, val string) {
	if val == "" {
		return
	}
	if !e.first {
		e.b.WriteByte(' ')
	}
	e.first = false
	e.b.WriteString(key)
	e.b.WriteByte('=')
	cefValue(e.b, val)
}

func (e *cefExt) addInt(key string, v int64) {
	if v != 0 {
		e.add(key, strconv.FormatInt(v, 10))
	}
}

// CEF renders an item as one CEF line (no trailing newline).
func CEF(it *Item) string {
	var b strings.Builder
	b.Grow(512)
	b.WriteString("CEF:0|Vigil|Vigil|")
	cefHeader(&b, version.Version)
	b.WriteByte('|')
	f := factsOf(it)
	cefHeader(&b, f.signature)
	b.WriteByte('|')
	cefHeader(&b, f.name)
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(f.cefSeverity))
	b.WriteByte('|')
	e := cefExt{b: &b, first: true}
	e.add("rt", strconv.FormatInt(it.Time().UnixMilli(), 10))
	e.add("externalId", f.id)
	e.add("cat", it.Kind)
	e.add("dvchost", f.host)
	e.add("deviceExternalId", f.agentID)
	e.add("src", f.srcIP)
	e.addInt("spt", int64(f.srcPort))
	e.add("dst", f.dstIP)
	e.addInt("dpt", int64(f.dstPort))
	e.add("dhost", f.dstName)
	e.add("proto", f.transport)
	e.add("suser", f.user)
	if f.hasUID {
		e.add("suid", strconv.FormatUint(uint64(f.uid), 10))
	}
	e.add("sproc", f.procName)
	e.addInt("spid", int64(f.pid))
	e.add("fname", f.fileName)
	e.add("filePath", f.filePath)
	e.add("act", f.action)
	e.add("outcome", f.outcome)
	if f.count > 1 {
		e.addInt("cnt", int64(f.count))
	}
	if f.rule != "" {
		e.add("cs1Label", "rule")
		e.add("cs1", f.rule)
	}
	if f.container != "" {
		e.add("cs2Label", "container")
		e.add("cs2", f.container)
	}
	if len(f.techniques) > 0 {
		e.add("cs3Label", "mitreTechnique")
		e.add("cs3", strings.Join(f.techniques, ","))
	}
	if f.image != "" {
		e.add("cs4Label", "image")
		e.add("cs4", f.image)
	}
	if f.cmdLine != "" {
		e.add("cs5Label", "commandLine")
		e.add("cs5", f.cmdLine)
	}
	if f.namespace != "" {
		e.add("cs6Label", "namespace")
		e.add("cs6", f.namespace)
	}
	if f.vuln != "" {
		e.add("flexString1Label", "vulnerability")
		e.add("flexString1", f.vuln)
	}
	if f.pkg != "" {
		e.add("flexString2Label", "package")
		e.add("flexString2", f.pkg+"@"+f.pkgVersion)
	}
	e.add("msg", f.message)
	return b.String()
}
