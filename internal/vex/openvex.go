package vex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// The statuses of a VEX statement.
const (
	StatusNotAffected        = "not_affected"
	StatusAffected           = "affected"
	StatusFixed              = "fixed"
	StatusUnderInvestigation = "under_investigation"
)

// justifications are OpenVEX's justification labels for not_affected.
var justifications = []string{
	"component_not_present",
	"vulnerable_code_not_present",
	"vulnerable_code_not_in_execute_path",
	"vulnerable_code_cannot_be_controlled_by_adversary",
	"inline_mitigations_already_exist",
}

// openVEXContext is the prefix of every OpenVEX @context IRI
// (https://openvex.dev/ns/v0.2.0 for the version this package implements).
const openVEXContext = "https://openvex.dev/ns"

// maxVEXFileSize bounds what LoadOpenVEX reads.
const maxVEXFileSize = 64 << 20

// Statement is one OpenVEX statement about one vulnerability.
type Statement struct {
	// Vulnerability is the vulnerability's name (CVE-…, GHSA-…).
	Vulnerability string `json:"vulnerability"`
	// Aliases are the vulnerability's other names and its @id.
	Aliases []string `json:"aliases,omitempty"`
	// Products are purls (or other @id IRIs) of the products the statement
	// is about, with their subcomponents flattened in: a package matching
	// any of them is covered.
	Products []string `json:"products"`
	// Status is not_affected, affected, fixed or under_investigation.
	Status          string `json:"status"`
	Justification   string `json:"justification,omitempty"`
	ImpactStatement string `json:"impact_statement,omitempty"`
	// Timestamp is the statement's time, else the document's; later
	// statements override earlier ones.
	Timestamp time.Time `json:"timestamp,omitzero"`
	// Source names the file the statement was read from.
	Source string `json:"source,omitempty"`
}

// suppressing reports whether a statement with status s suppresses the
// findings it applies to.
func suppressing(s string) bool {
	return s == StatusNotAffected || s == StatusFixed
}

// appliesTo reports whether st is about fd's vulnerability and package.
func (st *Statement) appliesTo(fd *vulnmatch.Finding) bool {
	named := idMatches(st.Vulnerability, fd)
	for _, a := range st.Aliases {
		named = named || idMatches(a, fd)
	}
	return named && st.coversPackage(fd, nil)
}

// coversPackage reports whether one of st's products is fd's package.
func (st *Statement) coversPackage(fd *vulnmatch.Finding, c purlCache) bool {
	for _, p := range st.Products {
		if c.matches(p, &fd.Package) {
			return true
		}
	}
	return false
}

func (st *Statement) reason() string {
	r := st.Status + " per " + st.Source
	if st.Source == "" {
		r = st.Status + " per VEX"
	}
	switch {
	case st.Justification != "":
		r += ": " + st.Justification
	case st.ImpactStatement != "":
		r += ": " + st.ImpactStatement
	}
	return r
}

// LoadOpenVEX reads an OpenVEX document (https://openvex.dev/ns/v0.2.0;
// the earlier drafts' string forms of vulnerability and product are also
// accepted). Every statement must name a vulnerability, at least one
// product and a known status; not_affected needs a justification or an
// impact statement, as the specification requires. Errors name the file and
// the statement.
func LoadOpenVEX(path string) ([]Statement, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read openvex: %w", err)
	}
	defer f.Close()
	return parseOpenVEX(io.LimitReader(f, maxVEXFileSize+1), path)
}

type vexDocument struct {
	Context    string         `json:"@context"`
	Timestamp  string         `json:"timestamp"`
	Statements []vexStatement `json:"statements"`
}

type vexStatement struct {
	Vulnerability   json.RawMessage   `json:"vulnerability"`
	Products        []json.RawMessage `json:"products"`
	Status          string            `json:"status"`
	Justification   string            `json:"justification"`
	ImpactStatement string            `json:"impact_statement"`
	Timestamp       string            `json:"timestamp"`
}

type vexVulnerability struct {
	ID      string   `json:"@id"`
	Name    string   `json:"name"`
	Aliases []string `json:"aliases"`
}

type vexComponent struct {
	ID          string            `json:"@id"`
	Identifiers map[string]string `json:"identifiers"`
}

type vexProduct struct {
	vexComponent
	Subcomponents []vexComponent `json:"subcomponents"`
}

// parseOpenVEX parses an OpenVEX document read from r; name is used in
// Source and in errors.
func parseOpenVEX(r io.Reader, name string) ([]Statement, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read openvex %s: %w", name, err)
	}
	if len(data) > maxVEXFileSize {
		return nil, fmt.Errorf("openvex %s: larger than %d bytes", name, maxVEXFileSize)
	}
	var doc vexDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("openvex %s: %w", name, jsonError(data, err))
	}
	if !strings.HasPrefix(doc.Context, openVEXContext) {
		return nil, fmt.Errorf("openvex %s: @context %q is not %s/…: not an OpenVEX document", name, doc.Context, openVEXContext)
	}
	docTime, err := parseTimestamp(doc.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("openvex %s: document %w", name, err)
	}
	out := make([]Statement, 0, len(doc.Statements))
	for i, s := range doc.Statements {
		st, err := convertStatement(&s, docTime)
		if err != nil {
			return nil, fmt.Errorf("openvex %s: statement %d: %w", name, i+1, err)
		}
		st.Source = name
		out = append(out, st)
	}
	return out, nil
}

func convertStatement(s *vexStatement, docTime time.Time) (Statement, error) {
	var st Statement
	if err := decodeVulnerability(s.Vulnerability, &st); err != nil {
		return st, err
	}
	for i, raw := range s.Products {
		ids, err := productIDs(raw)
		if err != nil {
			return st, fmt.Errorf("product %d: %w", i+1, err)
		}
		st.Products = append(st.Products, ids...)
	}
	if len(st.Products) == 0 {
		return st, errors.New("no products")
	}

	st.Status = s.Status
	switch s.Status {
	case StatusNotAffected:
		if s.Justification == "" && s.ImpactStatement == "" {
			return st, errors.New("not_affected needs a justification or an impact_statement")
		}
	case StatusAffected, StatusFixed, StatusUnderInvestigation:
	default:
		return st, fmt.Errorf("unknown status %q (want %s, %s, %s or %s)", s.Status,
			StatusNotAffected, StatusAffected, StatusFixed, StatusUnderInvestigation)
	}
	if s.Justification != "" && !slices.Contains(justifications, s.Justification) {
		return st, fmt.Errorf("unknown justification %q (want one of %s)", s.Justification, strings.Join(justifications, ", "))
	}
	st.Justification = s.Justification
	st.ImpactStatement = strings.TrimSpace(s.ImpactStatement)

	t, err := parseTimestamp(s.Timestamp)
	if err != nil {
		return st, err
	}
	if t.IsZero() {
		t = docTime
	}
	st.Timestamp = t
	return st, nil
}

// decodeVulnerability reads the statement's vulnerability: an object with
// name, @id and aliases, or (in drafts before v0.2.0) a bare name.
func decodeVulnerability(raw json.RawMessage, st *Statement) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return errors.New("no vulnerability")
	}
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		st.Vulnerability = strings.TrimSpace(name)
	} else {
		var v vexVulnerability
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("vulnerability: %w", err)
		}
		st.Vulnerability = strings.TrimSpace(v.Name)
		for _, a := range append(v.Aliases, v.ID) {
			if a = strings.TrimSpace(a); a != "" && !slices.Contains(st.Aliases, a) {
				st.Aliases = append(st.Aliases, a)
			}
		}
	}
	if st.Vulnerability == "" && len(st.Aliases) == 0 {
		return errors.New("vulnerability has no name")
	}
	return nil
}

// productIDs returns the identifiers of one product and its subcomponents:
// @id and identifiers.purl, or (in drafts before v0.2.0) a bare string.
func productIDs(raw json.RawMessage) ([]string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s = strings.TrimSpace(s); s == "" {
			return nil, errors.New("empty product")
		}
		return []string{s}, nil
	}
	var p vexProduct
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	var ids []string
	add := func(c vexComponent) {
		for _, id := range []string{c.ID, c.Identifiers["purl"]} {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	add(p.vexComponent)
	for _, c := range p.Subcomponents {
		add(c)
	}
	if len(ids) == 0 {
		return nil, errors.New("product has neither @id nor identifiers.purl")
	}
	return ids, nil
}

func parseTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q is not RFC 3339", s)
	}
	return t, nil
}

// jsonError adds the line and column to a JSON syntax or type error.
func jsonError(data []byte, err error) error {
	var off int64
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	default:
		return err
	}
	off = min(max(off, 0), int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
