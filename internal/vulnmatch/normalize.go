package vulnmatch

import (
	"strings"

	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// normalizeName is the name the database files a package under in
// ecosystem: vulndb.NormalizeName (PEP 503 for PyPI, unchanged elsewhere),
// applied to the base ecosystem so that a suffixed ecosystem string
// normalises like its base.
func normalizeName(ecosystem, name string) string {
	return vulndb.NormalizeName(baseEcosystem(ecosystem), name)
}

// baseEcosystem is the ecosystem without its suffix: "Debian" for
// "Debian:12", "Maven" for "Maven:https://maven.google.com".
func baseEcosystem(ecosystem string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return base
}
