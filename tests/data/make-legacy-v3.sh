#!/usr/bin/env bash
# Makes tests/data/legacy-v3.rdb: a Redis written by Spool before its job indexes were
# streams (commit 53b1832: the `all` and `completed` sorted sets; compact records
# whose payloads and results in pieces carry their count, `pk`/`rk`).
# Usage: make-legacy-v3.sh <that version's spool binary>.
# Jobs (payloads padded to ~300 bytes): sq queued; sc completed (echo: a ~300-byte
# result); sp completed with 3 progress events; sa in progress on a worker killed
# with -9. Prints the path of the dump.
source "$(dirname "$0")/legacy-dump.sh"
legacy_start 6396 18083 'queues:
  sc: {handler: echo}
  sp: {handler: simulation}
  sa: {handler: simulation, lease_seconds: 2}'
pad=$(printf 'v%.0s' $(seq 280))
legacy_post '{"queue":"sq","payload":{"n":2,"pad":"'$pad'"}}'
legacy_post '{"queue":"sc","payload":{"old":"done","pad":"'$pad'"},"ttl_seconds":315360000}'
legacy_post '{"queue":"sp","payload":{"duration_ms":300,"steps":3,"pad":"'$pad'"},"ttl_seconds":315360000}'
legacy_post '{"queue":"sa","payload":{"duration_ms":600000,"steps":600,"pad":"'$pad'"},"max_retries":3}'
legacy_finish sc,sp,sa
