package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-cwpp/vigil/internal/profile"
)

// maxControlBody bounds a profile import over the control socket.
const maxControlBody = 64 << 20

// listenControl serves the control API on a unix socket only root can
// reach (mode 0600): profiles (list, export, import, mode) and response
// records (list, undo). It is the way `vigil profile` and `vigil response`
// talk to a running agent.
func listenControl(path string, d *Detector) (*http.Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	srv := &http.Server{Handler: controlHandler(d), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

func controlHandler(d *Detector) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/profiles", func(w http.ResponseWriter, r *http.Request) {
		if d.prof == nil {
			http.Error(w, "profiles are off (--no-profiles)", http.StatusNotFound)
			return
		}
		if r.URL.Query().Get("format") == "json" {
			writeJSON(w, d.prof.List())
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		if err := d.prof.Export(w, r.URL.Query()["class"]...); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("PUT /v1/profiles", func(w http.ResponseWriter, r *http.Request) {
		if d.prof == nil {
			http.Error(w, "profiles are off (--no-profiles)", http.StatusNotFound)
			return
		}
		if err := d.prof.Import(io.LimitReader(r.Body, maxControlBody)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		profilesChanged(w, d)
	})
	mux.HandleFunc("POST /v1/profiles/mode", func(w http.ResponseWriter, r *http.Request) {
		if d.prof == nil {
			http.Error(w, "profiles are off (--no-profiles)", http.StatusNotFound)
			return
		}
		class, mode := r.FormValue("class"), profile.Mode(r.FormValue("mode"))
		if err := d.prof.SetMode(class, mode); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, profile.ErrUnknownClass) {
				status = http.StatusNotFound
			}
			http.Error(w, err.Error(), status)
			return
		}
		profilesChanged(w, d)
	})
	mux.HandleFunc("GET /v1/responses", func(w http.ResponseWriter, r *http.Request) {
		if d.resp == nil {
			http.Error(w, "response is off (--no-response)", http.StatusNotFound)
			return
		}
		writeJSON(w, d.resp.Records())
	})
	mux.HandleFunc("POST /v1/responses/undo", func(w http.ResponseWriter, r *http.Request) {
		if d.resp == nil {
			http.Error(w, "response is off (--no-response)", http.StatusNotFound)
			return
		}
		actor := r.FormValue("actor")
		if actor == "" {
			actor = "operator"
		}
		rec, err := d.resp.Undo(r.Context(), r.FormValue("id"), actor)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, rec)
	})
	return mux
}

// profilesChanged has the exec policies re-applied, saves the profiles
// and answers 204.
func profilesChanged(w http.ResponseWriter, d *Detector) {
	d.modesChanged.Store(true)
	if err := d.prof.Save(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
