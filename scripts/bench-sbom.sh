#!/usr/bin/env bash
# bench-sbom.sh times `vigil sbom` and syft on the same inputs — the bookworm
# minbase root filesystem and its docker-archive — several runs each, and
# prints wall time, CPU time (user+sys), peak RSS and package counts side by
# side. Usage: scripts/bench-sbom.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cache=${VIGIL_TEST_CACHE:-/var/cache/vigil-test}
rootfs=$cache/bookworm-rootfs
archive=$cache/bookworm-docker.tar
vigil=./bin/vigil
syft=$(command -v syft || echo "$(go env GOPATH)/bin/syft")

[ -x "$vigil" ] || make build >/dev/null
[ -d "$rootfs" ] && [ -f "$archive" ] || bash scripts/test-prereqs.sh
if [ ! -x "$syft" ]; then
	echo "installing syft v1.57.0 with go install" >&2
	GOFLAGS= go install github.com/anchore/syft/cmd/syft@v1.57.0
	syft=$(go env GOPATH)/bin/syft
fi
export SYFT_CHECK_FOR_APP_UPDATE=false
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# measure TOOL TARGET CMD... : runs CMD $runs times after one warm-up, prints
# median wall, median cpu, max RSS and the package count of the last output.
measure() {
	local tool=$1 target=$2
	shift 2
	"$@" >"$out/report.json" 2>/dev/null # warm the page cache
	local walls=() cpus=() rss=0
	for _ in $(seq "$runs"); do
		/usr/bin/time -f '%e %U %S %M' -o "$out/time" "$@" >"$out/report.json" 2>/dev/null
		read -r e u s m <"$out/time"
		walls+=("$e")
		cpus+=("$(echo "$u + $s" | bc)")
		[ "$m" -gt "$rss" ] && rss=$m
	done
	local count
	count=$(python3 - "$tool" "$out/report.json" <<'PY'
import json, sys
tool, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
if tool == "vigil":
    print(len(d["packages"]))
else:
    print(len(d["artifacts"]))
PY
)
	median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
	printf '%-6s %-16s %8ss %8ss %8d MB %6d\n' "$tool" "$target" "$(median "${walls[@]}")" "$(median "${cpus[@]}")" $((rss / 1024)) "$count"
}

echo "# $(date -u +%F) $(nproc) cores; $runs runs each, median wall/CPU, max RSS"
echo "# $($vigil version); $(go version -m "$syft" | awk '$1=="mod" {print $2, $3}')"
printf '%-6s %-16s %9s %9s %11s %6s\n' tool target wall cpu peak-rss pkgs
measure vigil rootfs "$vigil" sbom -q -f json "dir:$rootfs"
measure syft rootfs "$syft" scan -q -o json "dir:$rootfs"
measure vigil docker-archive "$vigil" sbom -q -f json "docker-archive:$archive"
measure syft docker-archive "$syft" scan -q -o json "docker-archive:$archive"
