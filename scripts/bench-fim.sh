#!/usr/bin/env bash
# bench-fim.sh: vigil fim init/check vs aide --init/--check on a tree (default
# /usr) with sha256 only, side by side: wall time, CPU (user+sys) and peak RSS
# from /usr/bin/time. Then the floor: reading every file (find | xargs cat)
# and sha256sum's single-core throughput. Between init and check it adds,
# changes and removes a few files in a scratch directory under the tree and
# requires AIDE and vigil to report the same paths. Page cache warm (one read
# pass first). Needs root (reads all of /usr), aide, jq.
# Usage: scripts/bench-fim.sh [TREE]
set -euo pipefail
cd "$(dirname "$0")/.."
tree=${1:-/usr}
work=$(mktemp -d)
scratch="$tree/local/share/vigil-bench-fim.$$"
[ -d "$tree/local/share" ] || scratch="$tree/vigil-bench-fim.$$"
trap 'rm -rf "$work" "$scratch"' EXIT
go build -o "$work/vigil" ./cmd/vigil

mkdir -p "$scratch"
for i in 1 2 3 4 5; do echo "file $i" > "$scratch/f$i"; done

cat > "$work/aide.conf" <<CONF
database_in=file:$work/aide.db
database_out=file:$work/aide.db.new
report_format=json
report_url=stdout
$tree sha256
CONF
cat > "$work/vigil.yaml" <<CONF
watch:
  - {path: $tree, attrs: sha256}
CONF

measure() { # name, command...: prints "name wall_s cpu_s rss_MiB"
	local name=$1; shift
	/usr/bin/time -o "$work/time" -f '%e %U %S %M' "$@" >"$work/$name.out" 2>"$work/$name.err" || true
	read -r wall user sys rss < <(tail -n 1 "$work/time") # a first line says the exit status, if not 0
	awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" \
		'BEGIN { printf "%-14s %8.2f %8.2f %9.0f\n", n, w, u+s, r/1024 }' | tee -a "$work/table"
}

echo "warming the page cache ($tree)..." >&2
find "$tree" -xdev -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true
files=$(find "$tree" -xdev -type f | wc -l)
bytes=$(find "$tree" -xdev -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')

printf '%s: %d files, %.2f GB, %d cores\n\n' "$tree" "$files" "$(echo "$bytes/1000000000" | bc -l)" "$(nproc)"
printf '%-14s %8s %8s %9s\n' "run" "wall_s" "cpu_s" "rss_MiB"
measure aide-init aide --init -c "$work/aide.conf"
mv "$work/aide.db.new" "$work/aide.db"
measure vigil-init "$work/vigil" fim init -c "$work/vigil.yaml" --db "$work/vigil.db" --key "$work/vigil.key"

# A few changes: content, a new file, a removed one.
echo changed >> "$scratch/f1"
echo changed > "$scratch/f2"
rm "$scratch/f3"
echo new > "$scratch/new"

measure aide-check aide --check -c "$work/aide.conf"
measure vigil-check "$work/vigil" fim check --format json -c "$work/vigil.yaml" --db "$work/vigil.db" --key "$work/vigil.key"
measure floor-cat sh -c "find '$tree' -xdev -type f -print0 | xargs -0 cat >/dev/null 2>&1"
shm=/dev/shm; [ -d "$shm" ] || shm=$work
head -c 1073741824 /dev/zero >"$shm/vigil-bench-1g.$$"
measure sha256sum-1GiB sha256sum "$shm/vigil-bench-1g.$$"
if command -v openssl >/dev/null; then measure openssl-1GiB openssl dgst -sha256 "$shm/vigil-bench-1g.$$"; fi
rm -f "$shm/vigil-bench-1g.$$"
echo
# The floor: reading everything, or hashing everything on every core at the
# fastest single-core sha256 rate seen above, whichever is slower.
awk -v b="$bytes" -v n="$(nproc)" '
	$1 == "floor-cat" { cat = $2 }
	$1 ~ /-1GiB$/ { r = 1073741824 / $3; if (r > best) best = r } # CPU time: the machine may be busy
	$1 == "aide-init" { ai = $2 } $1 == "aide-check" { ac = $2 }
	$1 == "vigil-init" { vi = $2 } $1 == "vigil-check" { vc = $2 }
	END {
		hash = b / (best * n); floor = cat > hash ? cat : hash
		printf "sha256 %.2f GB/s per core; hashing everything on %d cores %.2f s; read %.2f s; floor %.2f s\n", best / 1e9, n, hash, cat, floor
		printf "vigil vs aide: init %.1fx faster, check %.1fx faster; vigil vs floor: init %.2fx, check %.2fx\n", ai / vi, ac / vc, vi / floor, vc / floor
	}' "$work/table"
echo

# The verdict is on the scratch directory's changes. The tree is live: other
# processes may change it while AIDE (slow) and vigil scan at different
# moments, so differences elsewhere are listed, not judged.
aide_set() { jq -r --arg k "$1" '.[$k] // {} | keys[]' "$work/aide-check.out" | sort; }
vigil_set() { jq -r --arg k "$1" '.[$k][].path' "$work/vigil-check.out" | sort; }
same=yes
for k in added removed changed; do
	a=$(aide_set "$k" | grep -F "$scratch/" | tr '\n' ' ' || true)
	v=$(vigil_set "$k" | grep -F "$scratch/" | tr '\n' ' ' || true)
	printf '%-8s aide:  %s\n%-8s vigil: %s\n' "$k" "$a" "" "$v"
	[ "$a" = "$v" ] || same=no
	[ -n "$a" ] || same=no
	other=$(comm -3 <(aide_set "$k" | grep -vF "$scratch/" || true) <(vigil_set "$k" | grep -vF "$scratch/" || true) | tr -d '\t' | tr '\n' ' ')
	[ -z "$other" ] || printf '%-8s outside %s, seen by one tool only (changed by another process during the run): %s\n' "$k" "$scratch" "$other"
done
echo "same findings: $same"
[ "$same" = yes ]
