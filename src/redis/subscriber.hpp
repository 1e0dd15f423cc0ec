// src/redis/subscriber.hpp
// Pub/sub on a connection of its own. Subscriptions survive reconnects (they are
// re-sent after each connect). Messages are queued until receive() takes them;
// the queue is bounded and the oldest message is dropped (and counted) when full.
#pragma once

#include "redis/options.hpp"
#include "util/asio.hpp"

#include <spool/result.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <vector>

namespace spool::redis {

struct message {
    std::string channel;
    std::string payload;
};

class subscriber : public std::enable_shared_from_this<subscriber> {
public:
    // Use from one executor (the one given here). Call stop() when done: the
    // background loop keeps the subscriber alive until then.
    static std::shared_ptr<subscriber> create(asio::any_io_executor ex, connection_options opts,
                                              std::size_t max_queued = 100000);
    ~subscriber();

    void start();
    void stop();  // receive() then completes with errc::shutting_down
    // Adds channels (sent now if connected, and after every reconnect).
    void subscribe(std::vector<std::string> channels);
    void unsubscribe(std::vector<std::string> channels);
    // The next message; errc::shutting_down after stop().
    asio::awaitable<result<message>> receive();
    bool is_connected() const noexcept;
    // Messages dropped because the queue was full.
    std::uint64_t dropped() const noexcept;
    // Number of successful connects so far (a reconnect increments it).
    std::uint64_t connect_count() const noexcept;

    struct impl;

private:
    subscriber(asio::any_io_executor ex, connection_options opts, std::size_t max_queued);
    std::unique_ptr<impl> impl_;
};

}  // namespace spool::redis
