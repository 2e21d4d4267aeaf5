#!/usr/bin/env bash
# test-prereqs.sh installs what the test suite needs when it is missing, starts
# dockerd when it is not running, and builds the cached test fixtures once per
# machine. It is idempotent: a second run does nothing but checks.
#
# Cache: $VIGIL_TEST_CACHE (default /var/cache/vigil-test).
set -euo pipefail

cache=${VIGIL_TEST_CACHE:-/var/cache/vigil-test}
mirror=${VIGIL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'test-prereqs: %s\n' "$*" >&2; }

# Peer tools the tests compare against, installed with the Go toolchain.
gobin=$(go env GOPATH)/bin
[ -x "$gobin/govulncheck" ] || { log "go install govulncheck@v1.9.0"; GOFLAGS= go install golang.org/x/vuln/cmd/govulncheck@v1.9.0; }

if [ "$(id -u)" != 0 ]; then
	log "not root: skipping package installs and fixtures (tests needing them will skip)"
	exit 0
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v rpmbuild >/dev/null || need+=(rpm)
command -v nft >/dev/null || need+=(nftables)        # response: checks the isolation tables
command -v nsenter >/dev/null || need+=(util-linux)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)   # store: the PostgreSQL engine's suite
command -v chromium >/dev/null || need+=(chromium)          # console: browser tests (chromedp)
command -v rsyslogd >/dev/null || need+=(rsyslog)           # export: a real syslog receiver
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || need+=(rsyslog-gnutls)  # … over TLS
command -v certtool >/dev/null || need+=(gnutls-bin)
command -v aide >/dev/null || need+=(aide)                  # fim: the peer it is compared with
command -v setfacl >/dev/null || need+=(acl)                # fim: ACL changes
command -v setfattr >/dev/null || need+=(attr)              # fim: xattr changes
command -v setcap >/dev/null || need+=(libcap2-bin)         # fim: file capabilities
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
	log "starting dockerd"
	mkdir -p /var/log
	nohup dockerd >/var/log/vigil-dockerd.log 2>&1 &
	for _ in $(seq 1 60); do
		docker info >/dev/null 2>&1 && break
		sleep 1
	done
	docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/vigil-dockerd.log"; exit 1; }
fi

# The local PostgreSQL cluster the store tests create their databases in.
if command -v pg_lsclusters >/dev/null; then
	if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
		v=$(pg_lsclusters -h | awk 'NR==1{print $1}')
		c=$(pg_lsclusters -h | awk 'NR==1{print $2}')
		if [ -n "$v" ]; then
			log "starting PostgreSQL $v/$c"
			pg_ctlcluster "$v" "$c" start || { log "PostgreSQL did not start"; exit 1; }
		fi
	fi
fi

mkdir -p "$cache"

# A Debian bookworm minbase root filesystem, made once per machine.
rootfs="$cache/bookworm-rootfs"
if [ ! -f "$rootfs.done" ]; then
	log "debootstrap bookworm minbase into $rootfs (takes a few minutes, once)"
	rm -rf "$rootfs"
	debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
		{ log "debootstrap failed; see $cache/debootstrap.log"; exit 1; }
	touch "$rootfs.done"
fi
if [ ! -f "$cache/bookworm-rootfs.tar" ]; then
	tar --numeric-owner -C "$rootfs" -cf "$cache/bookworm-rootfs.tar.tmp" .
	mv "$cache/bookworm-rootfs.tar.tmp" "$cache/bookworm-rootfs.tar"
fi
if ! docker image inspect vigil-test/bookworm:minbase >/dev/null 2>&1; then
	log "docker import vigil-test/bookworm:minbase"
	docker import "$cache/bookworm-rootfs.tar" vigil-test/bookworm:minbase >/dev/null
fi

if [ ! -f "$cache/bookworm-docker.tar" ]; then
	docker save -o "$cache/bookworm-docker.tar.tmp" vigil-test/bookworm:minbase
	mv "$cache/bookworm-docker.tar.tmp" "$cache/bookworm-docker.tar"
fi

# Real Debian packages for the language-extractor tests: Python dist-info and a
# Java library jar, downloaded once (not installed on the host).
debs="$cache/debs"
if [ ! -f "$debs/.done" ]; then
	log "downloading fixture .deb packages into $debs"
	mkdir -p "$debs"
	(cd "$debs" && apt-get download python3-six python3-idna python3-urllib3 python3-certifi libcommons-lang3-java hello >/dev/null 2>&1) ||
		{ apt-get update -qq && (cd "$debs" && apt-get download python3-six python3-idna python3-urllib3 python3-certifi libcommons-lang3-java hello >/dev/null); }
	touch "$debs/.done"
fi
log "ready (cache $cache)"
