package vigil_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs checks that every package has exactly one package doc
// comment, which says what the package is for.
func TestPackageDocs(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
			return filepath.SkipDir
		}
		files, _ := filepath.Glob(filepath.Join(path, "*.go"))
		docs := 0
		seen := false
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			seen = true
			src, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				docs++
			}
		}
		if seen && docs != 1 {
			t.Errorf("%s: %d package doc comments, want exactly 1", path, docs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
