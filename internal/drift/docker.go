package drift

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Report is the drift of one container.
type Report struct {
	ID      string   `json:"container_id"`
	Name    string   `json:"container_name"`
	Image   string   `json:"image"`
	Running bool     `json:"running"`
	Driver  string   `json:"storage_driver"`
	Upper   string   `json:"upper_dir,omitempty"`
	Changes []Change `json:"changes"`
	// Error says what could not be checked (an unsupported storage
	// driver, unreadable entries); Changes holds what could.
	Error string `json:"error,omitempty"`
}

// Drifted reports whether r found any change.
func (r *Report) Drifted() bool { return len(r.Changes) > 0 }

// Executables are the added or changed executables: running one is drift.
func (r *Report) Executables() []Change {
	var out []Change
	for _, c := range r.Changes {
		if c.Executable && (c.Kind == Added || c.Kind == Changed) {
			out = append(out, c)
		}
	}
	return out
}

// Docker is the part of the Docker client drift needs.
type Docker interface {
	ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}

var _ Docker = (*client.Client)(nil)

// Containers checks the named containers (IDs, ID prefixes or names), or
// every running one when refs is empty. A container that cannot be
// inspected is an error naming it; one whose layers cannot be read is a
// Report with Error set.
func Containers(ctx context.Context, d Docker, refs []string) ([]Report, error) {
	listed := len(refs) == 0
	if listed {
		res, err := d.ContainerList(ctx, client.ContainerListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing running containers: %w", err)
		}
		for _, c := range res.Items {
			refs = append(refs, c.ID)
		}
	}
	out := make([]Report, 0, len(refs))
	for _, ref := range refs {
		r, err := Container(ctx, d, ref)
		if listed && cerrdefs.IsNotFound(err) {
			continue // removed since the listing
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Container checks one container.
func Container(ctx context.Context, d Docker, ref string) (Report, error) {
	res, err := d.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		return Report{}, fmt.Errorf("inspecting container %s: %w", ref, err)
	}
	c := res.Container
	r := Report{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Changes: []Change{}}
	if c.Config != nil {
		r.Image = c.Config.Image
	}
	if c.State != nil {
		r.Running = c.State.Running
	}
	if c.GraphDriver == nil {
		r.Error = "Docker reports no storage driver data"
		return r, nil
	}
	r.Driver = c.GraphDriver.Name
	l, err := overlayLayers(c.GraphDriver.Name, c.GraphDriver.Data)
	if err != nil {
		r.Error = err.Error()
		return r, nil
	}
	r.Upper = l.Upper
	r.Changes, err = Scan(l)
	if r.Changes == nil {
		r.Changes = []Change{}
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r, nil
}

// overlayLayers reads the upper and lower directories from overlay2's
// driver data.
func overlayLayers(driver string, data map[string]string) (Layers, error) {
	if driver != "overlay2" && driver != "overlay" {
		return Layers{}, fmt.Errorf("storage driver %q: only overlay2 is supported", driver)
	}
	l := Layers{Upper: data["UpperDir"]}
	if l.Upper == "" || !filepath.IsAbs(l.Upper) {
		return Layers{}, fmt.Errorf("storage driver %s: no absolute UpperDir (%q)", driver, l.Upper)
	}
	if ld := data["LowerDir"]; ld != "" {
		for _, p := range strings.Split(ld, ":") {
			if !filepath.IsAbs(p) {
				return Layers{}, fmt.Errorf("storage driver %s: LowerDir entry %q is not absolute", driver, p)
			}
			l.Lower = append(l.Lower, p)
		}
	}
	return l, nil
}
