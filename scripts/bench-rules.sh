#!/usr/bin/env bash
# bench-rules.sh measures what rules, profiles and response add to the
# agent's overhead: the loops of scripts/bench-agent.sh (exec-heavy,
# open/close-heavy with writes, connect-heavy, on the host) plus an exec
# loop inside a container (behaviour profiles only look at containers),
# each timed with no agent, with the bare agent (--no-rules --no-profiles
# --no-response) and with the agent as it runs by default (built-in rules,
# profiles learning, response in monitor mode), events and alerts written
# to /dev/null. Reports both ratios side by side, and each agent's CPU
# time, peak RSS, events, alerts and ring-buffer drops. Needs root, python3,
# and Docker with vigil-test/bookworm:minbase for the container loop.
# Usage: scripts/bench-rules.sh [ROUNDS]   (default 3; medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/vigil" ./cmd/vigil
img=vigil-test/bookworm:minbase
docker image inspect "$img" >/dev/null 2>&1 || img=""

cp scripts/bench-loops.py "$work/loops.py"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The container loop times itself (microseconds), without the container's
# start and removal.
ctr_loop() {
	docker run --rm --network none "$img" sh -c \
		'i=0; s=$(date +%s%N); while [ $i -lt '"$1"' ]; do /bin/true; i=$((i+1)); done; e=$(date +%s%N); echo $(( (e - s) / 1000 ))' |
		awk '{printf "%.6f\n", $1 / 1e6}'
}
run_loop() {
	if [ "$1" = ctr-exec ]; then ctr_loop "$2"; else python3 "$work/loops.py" "$1" "$2" "$work"; fi
}

declare -A N=([exec]=2000 [open]=200000 [connect]=10000 [ctr-exec]=2000)
loops=(exec open connect)
[ -n "$img" ] && loops+=(ctr-exec)
declare -A TS CPU RSS EV AL DR

measure() { # measure CONFIG: one time of each loop, appended
	for k in "${loops[@]}"; do TS[$1/$k]+=" $(run_loop "$k" "${N[$k]}")"; done
}

with_agent() { # with_agent CONFIG PORT FLAGS...: measure with the agent running
	local cfg=$1 port=$2
	shift 2
	mkdir -p "$work/$cfg"
	"$work/vigil" agent --metrics-addr "127.0.0.1:$port" --file /dev/null \
		--state-dir "$work/$cfg" --control-socket "$work/$cfg/control.sock" "$@" 2>"$work/$cfg.err" &
	local agent=$!
	for _ in $(seq 150); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
	curl -sf "127.0.0.1:$port/healthz" >/dev/null || { cat "$work/$cfg.err" >&2; exit 1; }
	local cpu0 cpu1 m
	cpu0=$(awk '{print $14+$15}' /proc/$agent/stat)
	measure "$cfg"
	cpu1=$(awk '{print $14+$15}' /proc/$agent/stat)
	CPU[$cfg]=$(echo "${CPU[$cfg]:-0} + ($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l)
	RSS[$cfg]=$(awk -v r="${RSS[$cfg]:-0}" '/VmHWM/ {m = int($2/1024); print (m > r ? m : r)}' /proc/$agent/status)
	m=$(curl -s "127.0.0.1:$port/metrics")
	EV[$cfg]=$(( ${EV[$cfg]:-0} + $(echo "$m" | awk '/^vigil_agent_events_total/ {s += $2} END {printf "%d", s}') ))
	AL[$cfg]=$(( ${AL[$cfg]:-0} + $(echo "$m" | awk '/^vigil_agent_alerts_total/ {s += $2} END {printf "%d", s}') ))
	DR[$cfg]=$(( ${DR[$cfg]:-0} + $(echo "$m" | awk '/^vigil_agent_ringbuf_drops_total/ {s += $2} END {printf "%d", s}') ))
	kill $agent
	wait $agent 2>/dev/null || true
}

# Rounds interleave the three configurations, so that load from elsewhere
# on the machine falls on all three alike.
for _ in $(seq "$rounds"); do
	measure off
	with_agent bare 19466 --no-rules --no-profiles --no-response
	with_agent full 19467
done
declare -A T
for cfg in off bare full; do
	for k in "${loops[@]}"; do
		# shellcheck disable=SC2086
		T[$cfg/$k]=$(median ${TS[$cfg/$k]})
	done
done

echo "# $(date -u +%F) $(nproc) cores; median of $rounds rounds per loop; bare = --no-rules --no-profiles --no-response, full = defaults"
printf '%-9s %7s %9s %9s %9s %10s %10s\n' loop n off bare full bare/off full/off
for k in "${loops[@]}"; do
	printf '%-9s %7d %8.3fs %8.3fs %8.3fs %10.3f %10.3f\n' "$k" "${N[$k]}" "${T[off/$k]}" "${T[bare/$k]}" "${T[full/$k]}" \
		"$(echo "${T[bare/$k]} / ${T[off/$k]}" | bc -l)" "$(echo "${T[full/$k]} / ${T[off/$k]}" | bc -l)"
done
for cfg in bare full; do
	printf '%s agent: CPU %.2f s during its runs; peak RSS %d MB; events %d, alerts %d, ring-buffer drops %d\n' \
		"$cfg" "${CPU[$cfg]}" "${RSS[$cfg]}" "${EV[$cfg]}" "${AL[$cfg]}" "${DR[$cfg]}"
done
