#!/usr/bin/env bash
# bench-vuln.sh measures the vulnerability side: importing all of
# ../shared/data into a new database (wall, CPU, peak RSS, file size) and a
# full `vigil scan` of the bookworm docker-archive (inventory + matching)
# beside syft's SBOM alone of the same archive. Usage: scripts/bench-vuln.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cache=${VIGIL_TEST_CACHE:-/var/cache/vigil-test}
data=${VIGIL_SHARED_DATA:-../shared/data}
archive=$cache/bookworm-docker.tar
vigil=./bin/vigil
syft=$(command -v syft || echo "$(go env GOPATH)/bin/syft")
[ -x "$vigil" ] || make build >/dev/null
[ -x "$syft" ] || GOFLAGS= go install github.com/anchore/syft/cmd/syft@v1.57.0
export SYFT_CHECK_FOR_APP_UPDATE=false
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
inputs=("$data/osv/Go/all.zip" "$data/osv/PyPI/all.zip" "$data/debian-derived/all.zip" "$data/alpine-secdb"
	"$data/kev/known_exploited_vulnerabilities.json" "$data/nvd/nvdcve-2.0-subset.json")

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# row LABEL CMD... : median wall and CPU over $runs runs, max RSS.
row() {
	local label=$1
	shift
	local walls=() cpus=() rss=0
	for _ in $(seq "$runs"); do
		[ "$label" = "vigil db import" ] && rm -f "$out/db.sqlite"
		/usr/bin/time -f '%e %U %S %M' -o "$out/time" "$@" >/dev/null 2>&1 || true
		read -r e u s m <"$out/time"
		walls+=("$e")
		cpus+=("$(echo "$u + $s" | bc)")
		[ "$m" -gt "$rss" ] && rss=$m
	done
	printf '%-40s %8ss %8ss %8d MB\n' "$label" "$(median "${walls[@]}")" "$(median "${cpus[@]}")" $((rss / 1024))
}

echo "# $(date -u +%F) $(nproc) cores; $runs runs each, median wall/CPU, max RSS"
printf '%-40s %9s %9s %11s\n' what wall cpu peak-rss
row "vigil db import" "$vigil" db import -q --db "$out/db.sqlite" "${inputs[@]}"
echo "database file: $(du -k "$out/db.sqlite" | cut -f1) KiB"
row "vigil scan (inventory + matching)" "$vigil" scan -q --db "$out/db.sqlite" -f json "docker-archive:$archive"
row "syft scan (SBOM only)" "$syft" scan -q -o json "docker-archive:$archive"
