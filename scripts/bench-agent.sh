#!/usr/bin/env bash
# bench-agent.sh measures the agent's overhead: an exec-heavy, an
# open/close-heavy (writes, always reported) and a connect-heavy loop, each
# timed with the agent off and on (events written to /dev/null), with the
# agent's CPU time, peak RSS, events and ring-buffer drops. Needs root.
# Usage: scripts/bench-agent.sh [ROUNDS]   (default 3; medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
[ -x bin/vigil ] || make build >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cp scripts/bench-loops.py "$work/loops.py"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run_loop() { python3 "$work/loops.py" "$1" "$2" "$work"; }

declare -A N=([exec]=2000 [open]=200000 [connect]=10000)
declare -A OFF ON
for k in exec open connect; do
	offs=() ons=()
	for _ in $(seq "$rounds"); do offs+=("$(run_loop "$k" "${N[$k]}")"); done
	OFF[$k]=$(median "${offs[@]}")
done

./bin/vigil agent --metrics-addr 127.0.0.1:19465 --file /dev/null 2>"$work/agent.err" &
agent=$!
for _ in $(seq 100); do curl -sf 127.0.0.1:19465/healthz >/dev/null && break; sleep 0.2; done
cpu0=$(awk '{print $14+$15}' /proc/$agent/stat)
for k in exec open connect; do
	ons=()
	for _ in $(seq "$rounds"); do ons+=("$(run_loop "$k" "${N[$k]}")"); done
	ON[$k]=$(median "${ons[@]}")
done
cpu1=$(awk '{print $14+$15}' /proc/$agent/stat)
rss=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$agent/status)
metrics=$(curl -s 127.0.0.1:19465/metrics)
kill $agent; wait $agent 2>/dev/null || true

echo "# $(date -u +%F) $(nproc) cores; median of $rounds rounds per loop"
printf '%-8s %9s %10s %10s %8s\n' loop n off on ratio
for k in exec open connect; do
	printf '%-8s %9d %9.3fs %9.3fs %8.3f\n' "$k" "${N[$k]}" "${OFF[$k]}" "${ON[$k]}" "$(echo "${ON[$k]} / ${OFF[$k]}" | bc -l)"
done
hz=$(getconf CLK_TCK)
echo "agent CPU during the 'on' runs: $(echo "($cpu1 - $cpu0) / $hz" | bc -l | cut -c1-5) s; peak RSS ${rss} MB"
echo "$metrics" | grep -E '^vigil_agent_(events_total|ringbuf_drops_total)' | sort
