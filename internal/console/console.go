// Package console is Vigil's web console: a single-page application in
// plain ES modules and CSS, embedded in the binary and served by
// internal/server at "/". It talks only to the REST API under /api/v1 and
// holds no state of its own beyond the browser's session. Every piece of
// data is put into the page as text (textContent, never innerHTML): alert
// outputs, command lines and file names are attacker-controlled. The
// package does no I/O except serving its embedded files.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every console response: scripts,
// styles and connections only from the server itself, no inline script,
// no plugins, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// file is one embedded asset, read once.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Assets lists the URL paths of the embedded files, sorted.
func Assets() []string {
	var out []string
	fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, "/"+p)
		}
		return nil
	})
	return out
}

// Handler serves the console: the files under assets/ at their path
// (/assets/…), and index.html for any other path that is not under /api/,
// so the application's own routes (/alerts/ID, /inventory, …) load it on
// a reload or a pasted link. Paths under /api/ are not the console's and
// get a JSON 404, in case the API did not claim them.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // not left to the host's mime.types
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		files["/"+p] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: reading embedded assets: " + err.Error()) // the embed is fixed at build time
	}
	index := files["/assets/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no such API endpoint"}` + "\n"))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f, ok := files[path.Clean(r.URL.Path)]
		switch {
		case ok && strings.HasPrefix(r.URL.Path, "/assets/"):
			// Asset names carry no version: the browser revalidates
			// each time and gets a 304 while the ETag holds.
			h.Set("Cache-Control", "no-cache")
		case strings.HasPrefix(r.URL.Path, "/assets/"):
			http.NotFound(w, r)
			return
		default:
			f = index
			h.Set("Cache-Control", "no-store")
		}
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method == http.MethodHead {
			return
		}
		w.Write(f.body)
	})
}
