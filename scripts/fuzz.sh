#!/usr/bin/env bash
# fuzz.sh runs every Go fuzz target in the module for a while each:
#   scripts/fuzz.sh [DURATION]   (default 30s per target)
# New crashers land under the package's testdata/fuzz/ and fail `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "== $pkg $f ($t)"
		go test "$pkg" -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime 3s
	done
done
