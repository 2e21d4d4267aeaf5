#!/usr/bin/env bash
# bench-fim-realtime.sh measures what realtime FIM adds to the agent on a
# write-heavy loop (open O_WRONLY|O_CREAT|O_TRUNC + close of one file, from
# scripts/bench-loops.py) in a watched directory: the loop's wall time with
# no agent, with the agent without --fim-config and with it (the directory
# watched), and the agent's CPU time and alerts in each. Needs root.
# Usage: scripts/bench-fim-realtime.sh [ROUNDS] [N]   (default 3 rounds of 200000 opens; medians)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
n=${2:-200000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/vigil" ./cmd/vigil
cp scripts/bench-loops.py "$work/loops.py"
mkdir "$work/watched"
printf 'watch:\n  - {path: %s, attrs: NORMAL}\n' "$work/watched" >"$work/fim.yaml"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
loop() { python3 "$work/loops.py" open "$n" "$work/watched"; }
hz=$(getconf CLK_TCK)

ts=()
for _ in $(seq "$rounds"); do ts+=("$(loop)"); done
echo "# $(date -u +%F) $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); $n opens per round, median of $rounds"
printf '%-14s %9s %8s %10s %8s\n' agent loop ratio agent_cpu alerts
off=$(median "${ts[@]}")
printf '%-14s %8.3fs %8s %10s %8s\n' none "$off" 1.000 - -

for mode in no-fim fim; do
	args=(agent --metrics-addr 127.0.0.1:19466 --file "$work/out-$mode.jsonl" --no-profiles
		--state-dir "$work/state-$mode" --control-socket "")
	[ "$mode" = fim ] && args+=(--fim-config "$work/fim.yaml")
	"$work/vigil" "${args[@]}" 2>"$work/agent-$mode.err" &
	agent=$!
	for _ in $(seq 150); do curl -sf 127.0.0.1:19466/healthz >/dev/null && break; sleep 0.2; done
	cpu0=$(awk '{print $14+$15}' /proc/$agent/stat)
	ts=()
	for _ in $(seq "$rounds"); do ts+=("$(loop)"); done
	cpu1=$(awk '{print $14+$15}' /proc/$agent/stat)
	drops=$(curl -s 127.0.0.1:19466/metrics | awk '/^vigil_agent_ringbuf_drops_total/ {print $2}')
	kill $agent; wait $agent 2>/dev/null || true
	on=$(median "${ts[@]}")
	alerts=$(grep -c '"source":"fim"' "$work/out-$mode.jsonl" || true)
	printf '%-14s %8.3fs %8.3f %9.2fs %8s  (ring-buffer drops %s)\n' "$mode" "$on" "$(echo "$on / $off" | bc -l)" \
		"$(echo "($cpu1 - $cpu0) / $hz" | bc -l)" "$alerts" "${drops:-?}"
	rm -f "$work/out-$mode.jsonl"
done
