package inventory_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// mavenCoord is a Maven artifact as pom.properties names it.
type mavenCoord struct {
	GroupID, ArtifactID, Version string
}

func (c mavenCoord) purl() string {
	return "pkg:maven/" + c.GroupID + "/" + c.ArtifactID + "@" + c.Version
}

// parseProperties reads the key=value lines of a Java properties file (the
// subset Maven writes: no continuation lines).
func parseProperties(r io.Reader) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			k, v, _ = strings.Cut(l, ":")
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props, sc.Err()
}

// isJavaArchive matches the archive kinds the test builds and nests.
func isJavaArchive(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jar", ".war", ".ear":
		return true
	}
	return false
}

// pomCoords opens a Java archive held in memory and returns the Maven
// coordinates of every META-INF/maven/GROUP/ARTIFACT/pom.properties in it
// and, recursively, in the archives it contains.
func pomCoords(t *testing.T, name string, data []byte) []mavenCoord {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []mavenCoord
	for _, f := range zr.File {
		isPom := path.Base(f.Name) == "pom.properties" && strings.HasPrefix(f.Name, "META-INF/maven/")
		if !isPom && !isJavaArchive(f.Name) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("%s!%s: %v", name, f.Name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s!%s: %v", name, f.Name, err)
		}
		if !isPom {
			out = append(out, pomCoords(t, name+"!"+f.Name, b)...)
			continue
		}
		props, err := parseProperties(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s!%s: %v", name, f.Name, err)
		}
		c := mavenCoord{props["groupId"], props["artifactId"], props["version"]}
		if c.GroupID == "" || c.ArtifactID == "" || c.Version == "" {
			t.Fatalf("%s!%s: incomplete coordinates %+v", name, f.Name, c)
		}
		out = append(out, c)
	}
	return out
}

type zipMember struct {
	name string
	data []byte
}

// buildJavaArchive makes an archive of entries, deflated as jar tools do.
func buildJavaArchive(t *testing.T, entries ...zipMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkMaven compares the maven packages of rep with the coordinates read
// from the archives, by purl, and checks every package is located at loc:
// Vigil names the archive file on disk, however deep the jar is nested.
func checkMaven(t *testing.T, rep *inventory.Report, want []mavenCoord, loc string) {
	t.Helper()
	var wantPURLs, gotPURLs []string
	for _, c := range want {
		wantPURLs = append(wantPURLs, c.purl())
	}
	slices.Sort(wantPURLs)
	wantPURLs = slices.Compact(wantPURLs)
	for _, p := range packagesOfType(rep, "maven") {
		gotPURLs = append(gotPURLs, p.PURL)
		if diff := cmp.Diff([]string{loc}, p.Locations); diff != "" {
			t.Errorf("%s locations (-want +got):\n%s", p.PURL, diff)
		}
		if p.Ecosystem != "Maven" {
			t.Errorf("%s ecosystem %q, want Maven", p.PURL, p.Ecosystem)
		}
		if p.Extractor != "java/archive" {
			t.Errorf("%s extractor %q, want java/archive", p.PURL, p.Extractor)
		}
		// The Name carries both coordinates: groupId:artifactId.
		for _, c := range want {
			if c.purl() == p.PURL {
				if p.Name != c.GroupID+":"+c.ArtifactID || p.Version != c.Version {
					t.Errorf("%s: name %q version %q, want %s:%s %s", p.PURL, p.Name, p.Version, c.GroupID, c.ArtifactID, c.Version)
				}
			}
		}
	}
	slices.Sort(gotPURLs)
	if diff := cmp.Diff(wantPURLs, gotPURLs); diff != "" {
		t.Errorf("maven purls (-pom.properties +vigil):\n%s", diff)
	}
	if n := len(rep.Packages) - len(packagesOfType(rep, "maven")); n != 0 {
		t.Errorf("%d non-maven packages reported: %+v", n, rep.Packages)
	}
}

func TestDebianJar(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	root := t.TempDir()
	extractDebs(t, ctx, root, "libcommons-lang3-java")

	// The package ships one real jar in /usr/share/java and versioned
	// symlinks to it (there and in /usr/share/maven-repo).
	var jars, links []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !isJavaArchive(p) {
			return err
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		switch {
		case d.Type().IsRegular():
			jars = append(jars, rel)
		case d.Type()&fs.ModeSymlink != 0:
			links = append(links, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(jars) != 1 || !strings.HasPrefix(jars[0], "/usr/share/java/") {
		t.Fatalf("want one regular jar under /usr/share/java, found %v", jars)
	}
	if len(links) == 0 {
		t.Fatalf("the deb ships no jar symlinks; the fixture changed")
	}
	jarPath := jars[0]
	jarData, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(jarPath)))
	if err != nil {
		t.Fatal(err)
	}

	// Source of truth: the pom.properties Maven wrote into the jar.
	want := pomCoords(t, jarPath, jarData)
	if len(want) != 1 {
		t.Fatalf("%s holds %d pom.properties, want 1: %+v", jarPath, len(want), want)
	}
	lang3 := want[0]
	t.Logf("%s: %s", jarPath, lang3.purl())

	t.Run("deb", func(t *testing.T) {
		// The symlinks are not followed: the jar is reported once, at the
		// real file.
		rep := scanDir(t, ctx, root)
		checkMaven(t, rep, want, jarPath)
		t.Logf("compared %d maven packages (%d jar symlinks ignored)", len(want), len(links))
	})

	// A web application: the jar under WEB-INF/lib of a war that carries its
	// own pom.properties, and that war inside an ear (which has none). The
	// built archives have no version in their names and no MANIFEST.MF, so
	// pom.properties is the only identity the extractor can find in them.
	const warPom = "groupId=com.example.vigil\nartifactId=webapp\nversion=1.0.0\n"
	war := buildJavaArchive(t,
		zipMember{"WEB-INF/web.xml", []byte("<web-app/>\n")},
		zipMember{"META-INF/maven/com.example.vigil/webapp/pom.properties", []byte("#Generated by Maven\n" + warPom)},
		zipMember{"WEB-INF/lib/" + path.Base(jarPath), jarData},
	)
	ear := buildJavaArchive(t,
		zipMember{"META-INF/application.xml", []byte("<application/>\n")},
		zipMember{"webapp.war", war},
	)

	for _, tc := range []struct {
		name, file string
		data       []byte
		depth      int
	}{
		{"war", "webapp.war", war, 2},
		{"ear", "app.ear", ear, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFixture(t, filepath.Join(dir, tc.file), tc.data)
			want := pomCoords(t, tc.file, tc.data)
			if !slices.Contains(want, lang3) || !slices.Contains(want, (mavenCoord{"com.example.vigil", "webapp", "1.0.0"})) {
				t.Fatalf("%s: pom.properties found %+v, want commons-lang3 and webapp", tc.file, want)
			}
			rep := scanDir(t, ctx, dir)
			checkMaven(t, rep, want, "/"+tc.file)
			t.Logf("compared %d maven packages, jar nested %d archives deep", len(want), tc.depth)
		})
	}
}
