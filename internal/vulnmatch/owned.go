package vulnmatch

import (
	"path"
	"regexp"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// Language packages that an OS package installed (Debian's python3-yaml
// puts PyYAML's metadata in /usr/lib/python3/dist-packages) are matched
// through the OS package, against the distro's advisories, which know its
// backported fixes. Matching them a second time against PyPI, npm or
// RubyGems advisories would report fixed issues again. Such packages are
// skipped and counted as SkipOwnedByOS.
//
// The inventory carries no dpkg/apk/rpm file lists, so ownership is
// approximated from where the package was found, and kept conservative
// (when unsure, the package is matched, at worst reporting an issue twice):
//
//   - the rule applies only when the report has OS packages;
//   - every location of the package must be OS-owned, not only the first;
//   - OS-owned: /usr/share/… (Debian's Node modules, Java jars, Ruby gem
//     specs — pip, npm and gem never install there), Debian's
//     /usr/lib/nodejs/, /usr/lib/ruby/vendor_ruby/, Ruby's default gems
//     (/usr/lib/ruby/gems/X/specifications/default/), Debian's
//     /usr/lib/python3/dist-packages/ (pip installs into
//     /usr/local/lib/python3.X/dist-packages instead), and the Python
//     interpreter's own tree under /usr/lib/python3.X/ (bundled wheels);
//   - /usr/lib/python3.X/site-packages/ (and lib64) is where RPM and apk
//     distros put their python3-*/py3-* packages, but also where pip
//     installs on Alpine (before PEP 668, or with --break-system-packages):
//     it counts as OS-owned only when an OS package with a matching name
//     (python3-NAME, py3-NAME, python-NAME, python3XY-NAME) is installed;
//   - never OS-owned: /usr/local/…, /opt, home directories, application
//     trees, /usr/lib/node_modules (npm -g on Alpine), and other gem dirs.
type ownership struct {
	active bool
	// pyNames are the PyPI-normalised names of OS packages that look like
	// Python packages (NAME of python3-NAME, …).
	pyNames map[string]bool
}

func newOwnership(pkgs []inventory.Package) ownership {
	o := ownership{pyNames: make(map[string]bool)}
	for i := range pkgs {
		if isOSPackage(&pkgs[i]) {
			o.active = true
			if m := pythonPackageRE.FindStringSubmatch(strings.ToLower(pkgs[i].Name)); m != nil {
				o.pyNames[normalizeName("PyPI", m[1])] = true
			}
		}
	}
	return o
}

// owns reports whether the language package p is owned by an OS package.
func (o ownership) owns(p *inventory.Package) bool {
	if !o.active || isOSPackage(p) || len(p.Locations) == 0 {
		return false
	}
	for _, loc := range p.Locations {
		if !o.ownedPath(p, loc) {
			return false
		}
	}
	return true
}

var (
	pythonLibRE   = regexp.MustCompile(`^/usr/lib(?:64)?/python[23](?:\.\d+)?/`)
	rubyDefaultRE = regexp.MustCompile(`^/usr/lib(?:64)?/ruby/gems/[^/]+/specifications/default/`)
)

func (o ownership) ownedPath(p *inventory.Package, loc string) bool {
	loc = path.Clean("/" + loc)
	switch {
	case strings.HasPrefix(loc, "/usr/local/"):
		return false
	case strings.HasPrefix(loc, "/usr/share/"),
		strings.HasPrefix(loc, "/usr/lib/nodejs/"),
		strings.HasPrefix(loc, "/usr/lib/ruby/vendor_ruby/"),
		rubyDefaultRE.MatchString(loc):
		return true
	}
	prefix := pythonLibRE.FindString(loc)
	if prefix == "" {
		return false
	}
	dir, _, _ := strings.Cut(loc[len(prefix):], "/")
	switch dir {
	case "dist-packages":
		return true
	case "site-packages":
		return p.Type == "pypi" && o.hasPythonOSPackage(p.Name)
	default:
		return true
	}
}

// pythonPackageRE matches distro names of Python packages: python3-NAME,
// py3-NAME, python-NAME, python311-NAME.
var pythonPackageRE = regexp.MustCompile(`^(?:python3\d*|py3|python)-(.+)$`)

// hasPythonOSPackage reports whether an OS package looks like the distro
// packaging of the PyPI project name.
func (o ownership) hasPythonOSPackage(name string) bool {
	return o.pyNames[normalizeName("PyPI", name)]
}
