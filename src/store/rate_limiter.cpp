// src/store/rate_limiter.cpp
#include "store/rate_limiter.hpp"

#include "redis/script.hpp"

#include <fmt/format.h>

#include <cmath>
#include <string>

namespace spool::store {

namespace {

const redis::script& token_bucket() {
    static const redis::script s{R"lua(
-- ratelimit: token bucket; takes one token when one is available.
-- KEYS[1] <prefix>:ratelimit:<key>  (HASH: t = tokens left, ts = last refill, ms)
-- ARGV[1] rate (tokens per second)  ARGV[2] burst (bucket size)  ARGV[3] now (ms)
-- returns {1, 0} when allowed, {0, retry_after_ms} when refused
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil or ts == nil then
  tokens, ts = burst, now
end
-- Replicas' clocks may disagree slightly: never refill backwards.
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 'ts', string.format('%.0f', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait}
)lua"};
    return s;
}

}  // namespace

rate_limiter::rate_limiter(redis::connection& conn, rate_limit_options opts)
    : conn_{conn}, opts_{std::move(opts)} {
    if (opts_.burst == 0 && opts_.per_second > 0)
        opts_.burst = static_cast<std::uint32_t>(std::max(1.0, std::ceil(opts_.per_second)));
}

std::string rate_limiter::bucket_key(const std::string& key) const {
    return opts_.prefix + ":ratelimit:" + key;
}

asio::awaitable<rate_decision> rate_limiter::check(std::string key, millis now) {
    rate_decision open{true, std::chrono::milliseconds{0}, true};
    if (!enabled()) co_return rate_decision{};
    // Down: do not even queue the request behind a reconnect.
    if (!conn_.is_connected()) co_return open;
    std::vector<std::string> keys{bucket_key(key)};
    // Shortest exact text of the rate ("0.5", "1e-06"): std::to_string would round it to 6 decimals.
    std::vector<std::string> args{fmt::format("{}", opts_.per_second), std::to_string(opts_.burst),
                                  std::to_string(now)};
    auto reply = co_await token_bucket().eval(conn_, std::move(keys), std::move(args), opts_.timeout);
    if (!reply || reply->is_error() || !reply->is_array() || reply->elements.size() != 2) co_return open;
    auto allowed = reply->elements[0].as_integer();
    auto wait = reply->elements[1].as_integer();
    if (!allowed || !wait) co_return open;
    co_return rate_decision{*allowed == 1, std::chrono::milliseconds{*allowed == 1 ? 0 : *wait}, false};
}

}  // namespace spool::store
