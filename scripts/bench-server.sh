#!/usr/bin/env bash
# bench-server.sh measures the server side (docs/benchmarks.md, "Server"):
#   - ingest: 20 simulated agents (real gRPC clients over mutual TLS, in one
#     process) streaming alerts into the hub, on SQLite and on PostgreSQL,
#     with the console's reads (latest alerts, dashboard stats) measured
#     meanwhile;
#   - the API's latency (GET /api/v1/alerts, /api/v1/dashboard) over TLS
#     with 100k stored alerts;
#   - the store's Apply alone, the agent's spool and the SIEM encoders.
# Usage: scripts/bench-server.sh [alerts] (default 200000 alerts per engine)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
echo "# $(date -u +%F) $(nproc) cores"
go test -run '^$' -bench 'BenchmarkIngest' -benchtime "${n}x" ./internal/hub/ | grep -E '^Benchmark'
go test -run '^$' -bench 'BenchmarkAPI' -benchtime 200x ./internal/server/ | grep -E '^Benchmark'
go test -run '^$' -bench 'BenchmarkApplyAlerts' -benchtime 100x ./internal/store/ | grep -E '^Benchmark'
go test -run '^$' -bench 'BenchmarkSpoolSend|BenchmarkUplinkDelivery' ./internal/uplink/ | grep -E '^Benchmark'
go test -run '^$' -bench 'BenchmarkEncode|BenchmarkPublishTo' ./internal/export/ | grep -E '^Benchmark'
