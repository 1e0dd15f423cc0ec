#!/usr/bin/env bash
# Makes tests/data/legacy-v1.rdb: a Redis written by Spool before job records
# carried their own history (commit 486c1f5: per-job event streams, result
# keys, the ids index). Usage: make-legacy-v1.sh <that version's spool binary>.
# Jobs: lq queued (priority 5); lc completed; lp completed with 3 progress
# events; lf failed; la in progress on a worker killed with -9.
source "$(dirname "$0")/legacy-dump.sh"
legacy_start 6398 18081 'queues:
  lc: {handler: echo}
  lp: {handler: simulation}
  lf: {handler: simulation}
  la: {handler: simulation, lease_seconds: 2}'
legacy_post '{"queue":"lq","payload":{"n":2},"priority":5}'
legacy_post '{"queue":"lc","payload":{"legacy":"done"},"ttl_seconds":315360000}'
legacy_post '{"queue":"lp","payload":{"duration_ms":300,"steps":3},"ttl_seconds":315360000}'
legacy_post '{"queue":"lf","payload":{"duration_ms":10,"fail":true},"max_retries":0}'
legacy_post '{"queue":"la","payload":{"duration_ms":600000,"steps":600},"max_retries":3}'
legacy_finish lc,lp,lf,la
