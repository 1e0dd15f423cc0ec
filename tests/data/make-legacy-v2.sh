#!/usr/bin/env bash
# Makes tests/data/legacy-v2.rdb: a Redis written by Spool before records were
# kept compact (commit 7569678: history entries as JSON, payloads and results of
# any size in one field, so such records are hashtables).
# Usage: make-legacy-v2.sh <that version's spool binary>.
# Jobs (payloads padded to ~300 bytes): mq queued; mc completed (echo: a ~300-byte
# result); mp completed with 3 progress events; ma in progress on a worker killed
# with -9. Prints the path of the dump.
source "$(dirname "$0")/legacy-dump.sh"
legacy_start 6398 18081 'queues:
  mc: {handler: echo}
  mp: {handler: simulation}
  ma: {handler: simulation, lease_seconds: 2}'
pad=$(printf 'v%.0s' $(seq 280))
legacy_post '{"queue":"mq","payload":{"n":2,"pad":"'$pad'"}}'
legacy_post '{"queue":"mc","payload":{"old":"done","pad":"'$pad'"},"ttl_seconds":315360000}'
legacy_post '{"queue":"mp","payload":{"duration_ms":300,"steps":3,"pad":"'$pad'"},"ttl_seconds":315360000}'
legacy_post '{"queue":"ma","payload":{"duration_ms":600000,"steps":600,"pad":"'$pad'"},"max_retries":3}'
legacy_finish mc,mp,ma
