// src/redis/reconnect.hpp
// Internal: what a connection does between links. `backoff` computes the wait
// before the next connect attempt (min * 2^n, capped at max, with jitter);
// `connect_log` reports connects, drops and failures without flooding the log
// while Redis stays down.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace spool::redis::detail {

class backoff {
public:
    backoff(std::chrono::milliseconds min, std::chrono::milliseconds max);
    // The next delay: uniform in [d/2, d] where d = min(max, min * 2^attempts).
    std::chrono::milliseconds next();
    void reset() noexcept { attempts_ = 0; }

private:
    std::chrono::milliseconds min_;
    std::chrono::milliseconds max_;
    unsigned attempts_ = 0;
    std::minstd_rand rng_;
};

class connect_log {
public:
    // `what` names the peer in every line ("redis://127.0.0.1:6379/0", "subscriber ...").
    // `quiet`: a first, uneventful connect is logged at debug level (links a cluster
    // router opens per node: the router reports the cluster instead).
    explicit connect_log(std::string what, bool quiet = false);
    // A connect attempt failed. The first failure of an outage is a warning; repeats
    // are summarised at most every `quiet` period.
    void failed(std::string_view why);
    // A link came up (info; mentions the outage it ends).
    void connected();
    // An established link dropped (warning).
    void lost(std::string_view why);
    void closed();

    static constexpr std::chrono::seconds quiet{30};

private:
    std::shared_ptr<spdlog::logger> log_;
    std::string what_;
    bool quiet_ = false;
    std::uint64_t failures_ = 0;  // since the last successful connect
    std::uint64_t connects_ = 0;
    std::chrono::steady_clock::time_point down_since_{};
    std::chrono::steady_clock::time_point last_report_{};
};

}  // namespace spool::redis::detail
