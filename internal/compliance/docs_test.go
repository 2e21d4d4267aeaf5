package compliance

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

const docsPath = "../../docs/benchmarks-cis.md"

// checkTable is the Markdown table of a benchmark's checks, as
// docs/benchmarks-cis.md lists them.
func checkTable(bench string) string {
	var b strings.Builder
	b.WriteString("| ID | Title | Profile | Scored | How it is evaluated |\n|---|---|---|---|---|\n")
	for _, c := range Checks(bench) {
		scored := "yes"
		if !c.Scored {
			scored = "no"
		}
		per := ""
		if c.Container != nil {
			per = " (per container)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s%s |\n", c.ID, c.Title, strings.TrimSuffix(strings.TrimSuffix(c.Profile, " - Server"), " - Docker"), scored,
			strings.ReplaceAll(c.How, "|", `\|`), per)
	}
	return b.String()
}

// TestDocsListEveryCheck keeps docs/benchmarks-cis.md in step with the
// code: each benchmark's table is there verbatim. VIGIL_PRINT_CHECKS=1
// prints the tables to paste.
func TestDocsListEveryCheck(t *testing.T) {
	if os.Getenv("VIGIL_PRINT_CHECKS") != "" {
		fmt.Println(checkTable(BenchLinux))
		fmt.Println(checkTable(BenchDocker))
		return
	}
	doc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{BenchLinux, BenchDocker} {
		if !strings.Contains(string(doc), checkTable(b)) {
			t.Errorf("%s does not have the current %s check table; regenerate it with VIGIL_PRINT_CHECKS=1 go test -run TestDocsListEveryCheck ./internal/compliance/", docsPath, b)
		}
	}
}
