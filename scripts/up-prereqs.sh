#!/usr/bin/env bash
# up-prereqs.sh prepares this machine for `vigil up`: the Docker engine
# running (containers are what the agent watches and the first scan reads),
# and a vulnerability database. With no internet, the database is imported
# from $VIGIL_SHARED_DATA (default ../shared/data) when that exists; else
# `vigil db update` is tried. Each step is skipped when already done.
set -uo pipefail
log() { printf 'up-prereqs: %s\n' "$*" >&2; }
vigil=${VIGIL_BIN:-./bin/vigil}
if ! command -v dockerd >/dev/null && [ "$(id -u)" = 0 ]; then
	log "installing docker.io"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	log "starting dockerd"
	nohup dockerd >/var/log/vigil-dockerd.log 2>&1 &
	for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker info >/dev/null 2>&1 || log "Docker is not available: the agent sees host processes only and no image is scanned"

if ! "$vigil" db status >/dev/null 2>&1; then
	data=${VIGIL_SHARED_DATA:-../shared/data}
	if [ -d "$data/osv" ]; then
		log "importing the vulnerability database from $data (once)"
		inputs=()
		for f in "$data/osv/Go/all.zip" "$data/osv/PyPI/all.zip" "$data/debian-derived/all.zip" "$data/alpine-secdb" \
			"$data/kev/known_exploited_vulnerabilities.json" "$data/nvd/nvdcve-2.0-subset.json"; do
			[ -e "$f" ] && inputs+=("$f")
		done
		"$vigil" db import -q "${inputs[@]}" || log "import failed: the first scan will be an inventory"
	else
		log "no vulnerability database: trying vigil db update"
		"$vigil" db update -q || log "vigil db update failed (no internet?): the first scan will be an inventory"
	fi
fi
exit 0
