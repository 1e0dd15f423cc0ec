// src/handlers/http.hpp
// The `http` handler: sends the payload JSON to the queue's URL (POST unless the
// policy says otherwise; http:// or https:// with the system's CA certificates,
// host name verification and SNI) with the policy's headers plus Content-Type,
// X-Spool-Job-Id, X-Spool-Queue and X-Spool-Attempt. A 2xx JSON response body is
// the result (an empty 2xx body is null).
//
// The attempt fails (spool::job_failure) on any other status ("HTTP 500: <first
// 512 bytes of the body>"), a 2xx body that is not JSON ("HTTP 200: response is
// not JSON: ..."), a transport error ("POST http://host:port/path: connect:
// Connection refused"), a timeout ("timed out after N ms": the policy's timeout_ms,
// else the job's timeout) or cancellation. Redirects are not followed.
#pragma once

#include <spool/config.hpp>
#include <spool/handler.hpp>
#include <spool/result.hpp>

namespace spool::handlers {

// errc::config_error when policy.http.url or .method is unusable.
result<handler> make_http_handler(const queue_policy& policy);

}  // namespace spool::handlers
