// src/handlers/exec.hpp
// The `exec` handler: runs the queue's command once per attempt, without a shell.
// The payload JSON goes to the child's stdin (then EOF); its stdout is the result
// JSON (empty stdout: null); stderr lines `PROGRESS <percent> [message]` are
// progress reports, the rest is kept as a tail for error messages. The child gets
// the worker's environment plus the policy's `env`, SPOOL_JOB_ID, SPOOL_QUEUE and
// SPOOL_ATTEMPT, and runs in its own process group.
//
// The attempt fails (spool::job_failure) on a non-zero exit ("exit code 3"), death
// by a signal ("killed by signal 9 (SIGKILL)"), stdout that is not JSON ("stdout is
// not JSON: ..."), output over max_output_bytes ("stdout exceeds N bytes"), a
// timeout ("timed out after N s") or cancellation; the tail of stderr follows
// ("; stderr: ..."). On timeout, cancellation or the output limit the group gets
// SIGTERM, then SIGKILL after kill_grace. Whatever happens, the child is reaped and
// nothing is left running in its group before the handler returns.
//
// Runs entirely on the calling (I/O) executor: no threads, no blocking calls.
#pragma once

#include <spool/config.hpp>
#include <spool/handler.hpp>

namespace spool::handlers {

// The deadline of an attempt is job_context::timeout() (the worker sets it from the
// job or its queue's policy); `policy.timeout` is used when that is not positive.
handler make_exec_handler(const queue_policy& policy);

}  // namespace spool::handlers
