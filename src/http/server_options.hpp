// src/http/server_options.hpp
// Settings of the HTTP API server (`spool serve` fills them from flags,
// environment and the config file).
#pragma once

#include "http/job_request.hpp"

#include <spool/job.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace spool::http {

// The tenant of an API key that may see every tenant's jobs and pause/resume queues.
inline constexpr std::string_view admin_tenant = "*";

struct server_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;                                  // 0: an ephemeral port (see server::port())
    std::size_t max_payload_bytes = default_max_payload_bytes;  // request body limit (413 above)
    std::size_t max_connections = 1024;                         // more are answered 503 and closed
    std::uint32_t header_limit = 16 * 1024;                     // request line + headers (431 above)

    std::chrono::milliseconds idle_timeout{60'000};       // keep-alive: waiting for the next request
    std::chrono::milliseconds read_timeout{15'000};       // one request, from its first byte to its end
    std::chrono::milliseconds write_timeout{30'000};      // one response (or one stream write)
    std::chrono::milliseconds health_timeout{500};        // /health's PING + INFO budget
    std::chrono::milliseconds sse_ping_interval{15'000};  // ": ping" comments on idle streams
    std::size_t stream_queue_limit = 1024;  // WebSocket messages waiting to be written (slow client: closed)

    // API key → tenant. Empty: authentication off. A key whose tenant is "*" is an
    // admin: it sees every tenant's jobs and may pause/resume queues.
    std::map<std::string, std::string> api_keys;
    // Bearer token /metrics requires (an admin API key works too). Empty: /metrics is open.
    std::string metrics_key;

    // Requests per second per API key (per client IP when auth is off); 0 = off.
    double rate_limit_per_second = 0;
    std::uint32_t rate_limit_burst = 0;  // 0: max(1, ceil(rate))

    std::string default_queue{spool::default_queue};       // POST /api/jobs without a queue
    std::string compat_queue = "solve";                    // the /solve/async routes
    std::chrono::seconds result_ttl = default_result_ttl;  // default ttl_seconds
    // Per-queue max_retries / timeout defaults from the config file.
    std::map<std::string, queue_job_defaults, std::less<>> queue_defaults;
    int workers = -1;  // reported by /solve/async/stats; -1: count live workers in Redis

    // Dashboard history (docs/keys.md, `history`): every replica snapshots each
    // queue's counters once per bucket; replicas of one deployment must agree on
    // the bucket size. Buckets older than history_keep are dropped. 0: not recorded.
    std::chrono::milliseconds history_bucket{10'000};
    std::chrono::milliseconds history_keep{2 * 3600 * 1000};
};

}  // namespace spool::http
