// src/redis/reconnect.cpp
#include "redis/reconnect.hpp"

#include "util/log.hpp"

#include <algorithm>

namespace spool::redis::detail {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

backoff::backoff(milliseconds min, milliseconds max)
    : min_{std::max(min, milliseconds{1})}, max_{std::max(max, min_)}, rng_{std::random_device{}()} {}

milliseconds backoff::next() {
    auto d = min_;
    for (unsigned i = 0; i < attempts_ && d < max_; ++i) d *= 2;
    d = std::min(d, max_);
    if (attempts_ < 64) ++attempts_;
    std::uniform_int_distribution<long long> jitter{d.count() / 2, d.count()};
    return milliseconds{jitter(rng_)};
}

connect_log::connect_log(std::string what, bool quiet)
    : log_{log::get("redis")}, what_{std::move(what)}, quiet_{quiet} {}

void connect_log::failed(std::string_view why) {
    auto now = steady_clock::now();
    if (failures_++ == 0) {
        if (connects_ == 0) down_since_ = now;
        last_report_ = now;
        log_->warn("cannot connect to {}: {}; retrying", what_, why);
        return;
    }
    if (now - last_report_ < quiet) return;
    last_report_ = now;
    auto down = std::chrono::duration_cast<std::chrono::seconds>(now - down_since_);
    log_->warn("still cannot connect to {} after {} attempts ({} s): {}", what_, failures_, down.count(),
               why);
}

void connect_log::connected() {
    auto now = steady_clock::now();
    if (connects_++ == 0 && failures_ == 0) {
        if (quiet_) log_->debug("connected to {}", what_);
        else log_->info("connected to {}", what_);
    } else {
        auto down = std::chrono::duration_cast<milliseconds>(now - down_since_);
        log_->info("{} {} after {} ms ({} failed attempts)",
                   connects_ == 1 ? "connected to" : "reconnected to", what_, down.count(), failures_);
    }
    failures_ = 0;
}

void connect_log::lost(std::string_view why) {
    down_since_ = steady_clock::now();
    log_->warn("connection to {} lost: {}; reconnecting", what_, why);
}

void connect_log::closed() { log_->debug("connection to {} closed", what_); }

}  // namespace spool::redis::detail
