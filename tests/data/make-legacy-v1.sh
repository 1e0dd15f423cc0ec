#!/usr/bin/env bash
# Makes tests/data/legacy-v1.rdb: a Redis written by Spool before job records
# carried their own history (commit 486c1f5: per-job event streams, result
# keys, the ids index). Usage: make-legacy-v1.sh <that version's spool binary>.
# Jobs: lq queued (priority 5); lc completed; lp completed with 3 progress
# events; lf failed; la in progress on a worker killed with -9.
set -euo pipefail
OLD=$1
dir=$(mktemp -d)
cd "$dir"
cat > w.yaml <<'YAML'
queues:
  lc: {handler: echo}
  lp: {handler: simulation}
  lf: {handler: simulation}
  la: {handler: simulation, lease_seconds: 2}
YAML
redis-server --port 6398 --dir "$dir" --save '' --appendonly no --daemonize yes --logfile "$dir/r.log"
sleep 0.3
"$OLD" serve --redis redis://127.0.0.1:6398/0 --workers 0 --port 18081 --config w.yaml > serve.log 2>&1 &
serve=$!
for _ in $(seq 50); do curl -s localhost:18081/health >/dev/null && break; sleep 0.1; done
post() { curl -s -X POST localhost:18081/api/jobs -H 'Content-Type: application/json' -d "$1"; echo; }
post '{"queue":"lq","payload":{"n":2},"priority":5}'
post '{"queue":"lc","payload":{"legacy":"done"},"ttl_seconds":315360000}'
post '{"queue":"lp","payload":{"duration_ms":300,"steps":3},"ttl_seconds":315360000}'
post '{"queue":"lf","payload":{"duration_ms":10,"fail":true},"max_retries":0}'
post '{"queue":"la","payload":{"duration_ms":600000,"steps":600},"max_retries":3}'
"$OLD" worker --redis redis://127.0.0.1:6398/0 --config w.yaml --queues lc,lp,lf,la --concurrency 4 --id oldworker \
  > worker.log 2>&1 &
worker=$!
sleep 3  # the short jobs finish, `la` reports progress
kill -9 "$worker"
kill "$serve"; wait "$serve" || true
redis-cli -p 6398 save >/dev/null
redis-cli -p 6398 shutdown nosave >/dev/null || true
echo "$dir/dump.rdb"
