#!/usr/bin/env bash
# up-prereqs.sh makes sure the local Docker engine runs, so `vigil up` can
# inventory the local images. Installs docker.io when root and it is missing.
set -uo pipefail
log() { printf 'up-prereqs: %s\n' "$*" >&2; }
if ! command -v dockerd >/dev/null && [ "$(id -u)" = 0 ]; then
	log "installing docker.io"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	log "starting dockerd"
	nohup dockerd >/var/log/vigil-dockerd.log 2>&1 &
	for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker info >/dev/null 2>&1 || log "Docker is not available: only the host is inventoried"
exit 0
