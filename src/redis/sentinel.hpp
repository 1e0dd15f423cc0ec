// src/redis/sentinel.hpp
// Where the next connect attempt goes. With Sentinel (`redis+sentinel://`), the
// sentinels are asked for the master's address before every connect, and a
// watcher follows `+switch-master` so a failover moves the link at once rather
// than when the old master stops answering. With several hosts (cluster seeds),
// a failed attempt moves on to the next one.
#pragma once

#include "redis/options.hpp"
#include "util/asio.hpp"

#include <spool/result.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>

namespace spool::redis {

// Asks the sentinels of `o` (in order) for the address of `o.sentinel_master`.
// The error text names every sentinel's answer ("no master named X", refused, down).
asio::awaitable<result<endpoint>> ask_sentinels(asio::any_io_executor ex, const connection_options& o,
                                                std::string& why);

namespace detail {

// Points o.host:o.port where the next attempt should go; `failed` says the last
// attempt (to the current address) did not work. Returns "" or why no address
// could be found (then the attempt is not worth making).
asio::awaitable<std::string> choose_address(asio::any_io_executor ex, connection_options& o, bool failed);

// Subscribes to +switch-master on the sentinels of `o` and calls `switched` when
// `o.sentinel_master` moves. Stops when the returned handle is destroyed.
class switch_watch {
public:
    switch_watch(asio::any_io_executor ex, const connection_options& o,
                 std::function<void(endpoint)> switched);
    ~switch_watch();
    switch_watch(const switch_watch&) = delete;
    switch_watch& operator=(const switch_watch&) = delete;

private:
    struct state;
    std::shared_ptr<state> state_;
};

}  // namespace detail
}  // namespace spool::redis
