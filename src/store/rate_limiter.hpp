// src/store/rate_limiter.hpp
// Request rate limiting shared by every API replica: a token bucket per client
// key, kept in Redis under <prefix>:ratelimit:<key> (one key per script call, so
// it runs unchanged on Redis Cluster) and expiring once the bucket would be full
// again. `rate` tokens per second refill a bucket of `burst` tokens; one request
// takes one token.
//
// Fails open: when Redis is unreachable or answers in error, the request is
// allowed (an outage of the limiter must not take the API down with it).
//
// Threading: use from the executor of the connection it was given; the
// connection must outlive every call.
#pragma once

#include "redis/connection.hpp"
#include "util/asio.hpp"

#include <spool/job.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace spool::store {

struct rate_limit_options {
    std::string prefix = "spool";
    double per_second = 0;                   // 0: limiting is off, check() always allows
    std::uint32_t burst = 0;                 // bucket size; 0: max(1, ceil(per_second))
    std::chrono::milliseconds timeout{250};  // per check; on expiry the request is allowed
};

struct rate_decision {
    bool allowed = true;
    std::chrono::milliseconds retry_after{0};  // when refused: until one token is back
    bool fail_open = false;                    // allowed only because Redis could not be asked
};

class rate_limiter {
public:
    rate_limiter(redis::connection& conn, rate_limit_options opts);

    bool enabled() const noexcept { return opts_.per_second > 0; }
    const rate_limit_options& options() const noexcept { return opts_; }
    // Takes one token from `key`'s bucket. `key` is any client identity ("k:<hash>",
    // "ip:127.0.0.1"); it becomes part of a Redis key name. `now` in ms since the epoch.
    asio::awaitable<rate_decision> check(std::string key, millis now);

    // The Redis key of `key`'s bucket: <prefix>:ratelimit:<key>.
    std::string bucket_key(const std::string& key) const;

private:
    redis::connection& conn_;
    rate_limit_options opts_;
};

}  // namespace spool::store
