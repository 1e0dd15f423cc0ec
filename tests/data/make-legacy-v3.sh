#!/usr/bin/env bash
# Makes tests/data/legacy-v3.rdb: a Redis written by Spool before its job indexes were
# streams (commit 53b1832: the `all` and `completed` sorted sets; compact records
# whose payloads and results in pieces carry their count, `pk`/`rk`).
# Usage: make-legacy-v3.sh <that version's spool binary>.
# Jobs (payloads padded to ~300 bytes): sq queued; sc completed (echo: a ~300-byte
# result); sp completed with 3 progress events; sa in progress on a worker killed
# with -9. Prints the path of the dump.
set -euo pipefail
OLD=$1
dir=$(mktemp -d)
cd "$dir"
cat > w.yaml <<'YAML'
queues:
  sc: {handler: echo}
  sp: {handler: simulation}
  sa: {handler: simulation, lease_seconds: 2}
YAML
redis-server --port 6396 --dir "$dir" --save '' --appendonly no --daemonize yes --logfile "$dir/r.log"
sleep 0.3
"$OLD" serve --redis redis://127.0.0.1:6396/0 --workers 0 --port 18083 --config w.yaml > serve.log 2>&1 &
serve=$!
for _ in $(seq 50); do curl -s localhost:18083/health >/dev/null && break; sleep 0.1; done
pad=$(printf 'v%.0s' $(seq 280))
post() { curl -s -X POST localhost:18083/api/jobs -H 'Content-Type: application/json' -d "$1"; echo; }
post '{"queue":"sq","payload":{"n":2,"pad":"'$pad'"}}'
post '{"queue":"sc","payload":{"old":"done","pad":"'$pad'"},"ttl_seconds":315360000}'
post '{"queue":"sp","payload":{"duration_ms":300,"steps":3,"pad":"'$pad'"},"ttl_seconds":315360000}'
post '{"queue":"sa","payload":{"duration_ms":600000,"steps":600,"pad":"'$pad'"},"max_retries":3}'
"$OLD" worker --redis redis://127.0.0.1:6396/0 --config w.yaml --queues sc,sp,sa --concurrency 4 --id oldworker \
  > worker.log 2>&1 &
worker=$!
sleep 3  # the short jobs finish, `ma` reports progress
kill -9 "$worker"
kill "$serve"; wait "$serve" || true
redis-cli -p 6396 save >/dev/null
redis-cli -p 6396 shutdown nosave >/dev/null || true
echo "$dir/dump.rdb"
