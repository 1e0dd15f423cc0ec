#!/usr/bin/env bash
# Makes tests/data/legacy-v2.rdb: a Redis written by Spool before records were
# kept compact (commit 7569678: history entries as JSON, payloads and results of
# any size in one field, so such records are hashtables).
# Usage: make-legacy-v2.sh <that version's spool binary>.
# Jobs (payloads padded to ~300 bytes): mq queued; mc completed (echo: a ~300-byte
# result); mp completed with 3 progress events; ma in progress on a worker killed
# with -9. Prints the path of the dump.
set -euo pipefail
OLD=$1
dir=$(mktemp -d)
cd "$dir"
cat > w.yaml <<'YAML'
queues:
  mc: {handler: echo}
  mp: {handler: simulation}
  ma: {handler: simulation, lease_seconds: 2}
YAML
redis-server --port 6398 --dir "$dir" --save '' --appendonly no --daemonize yes --logfile "$dir/r.log"
sleep 0.3
"$OLD" serve --redis redis://127.0.0.1:6398/0 --workers 0 --port 18081 --config w.yaml > serve.log 2>&1 &
serve=$!
for _ in $(seq 50); do curl -s localhost:18081/health >/dev/null && break; sleep 0.1; done
pad=$(printf 'v%.0s' $(seq 280))
post() { curl -s -X POST localhost:18081/api/jobs -H 'Content-Type: application/json' -d "$1"; echo; }
post '{"queue":"mq","payload":{"n":2,"pad":"'$pad'"}}'
post '{"queue":"mc","payload":{"old":"done","pad":"'$pad'"},"ttl_seconds":315360000}'
post '{"queue":"mp","payload":{"duration_ms":300,"steps":3,"pad":"'$pad'"},"ttl_seconds":315360000}'
post '{"queue":"ma","payload":{"duration_ms":600000,"steps":600,"pad":"'$pad'"},"max_retries":3}'
"$OLD" worker --redis redis://127.0.0.1:6398/0 --config w.yaml --queues mc,mp,ma --concurrency 4 --id oldworker \
  > worker.log 2>&1 &
worker=$!
sleep 3  # the short jobs finish, `ma` reports progress
kill -9 "$worker"
kill "$serve"; wait "$serve" || true
redis-cli -p 6398 save >/dev/null
redis-cli -p 6398 shutdown nosave >/dev/null || true
echo "$dir/dump.rdb"
