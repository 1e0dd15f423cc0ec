# Sourced by make-legacy-v*.sh: the steps every legacy dump shares. Each recipe
# names its version's queues and jobs; these run that version's binary ($OLD).
#   legacy_start <redis port> <http port> <worker config YAML>
#       a private redis-server and the old `spool serve` (no workers), in a temp dir
#   legacy_post <job JSON>          submits one job through the old API
#   legacy_finish <worker queues>   runs the old worker for 3 s (the short jobs finish,
#       the long one reports progress), kills it with -9, stops serve, saves the
#       dump and prints its path
set -euo pipefail
OLD=$1

legacy_start() {
  redis_port=$1 http_port=$2
  dir=$(mktemp -d)
  cd "$dir"
  printf '%s\n' "$3" > w.yaml
  redis-server --port "$redis_port" --dir "$dir" --save '' --appendonly no --daemonize yes --logfile "$dir/r.log"
  sleep 0.3
  "$OLD" serve --redis "redis://127.0.0.1:$redis_port/0" --workers 0 --port "$http_port" --config w.yaml \
    > serve.log 2>&1 &
  serve=$!
  for _ in $(seq 50); do curl -s "localhost:$http_port/health" >/dev/null && break; sleep 0.1; done
}

legacy_post() {
  curl -s -X POST "localhost:$http_port/api/jobs" -H 'Content-Type: application/json' -d "$1"
  echo
}

legacy_finish() {
  "$OLD" worker --redis "redis://127.0.0.1:$redis_port/0" --config w.yaml --queues "$1" --concurrency 4 \
    --id oldworker > worker.log 2>&1 &
  local worker=$!
  sleep 3
  kill -9 "$worker"
  kill "$serve"; wait "$serve" || true
  redis-cli -p "$redis_port" save >/dev/null
  redis-cli -p "$redis_port" shutdown nosave >/dev/null || true
  echo "$dir/dump.rdb"
}
