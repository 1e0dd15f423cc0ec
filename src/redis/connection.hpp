// src/redis/connection.hpp
// One Redis connection (TCP, unix socket or TLS) shared by many coroutines:
// concurrent exec() calls are pipelined into single writes and their replies
// matched in order. run() connects, AUTHs, SELECTs, and reconnects with capped
// exponential backoff when the link drops.
//
// The same object speaks to a Redis Cluster (options.cluster on, or found by
// INFO cluster at the first connect): then it routes each command by its key's
// slot over one pipelined link per master (cluster.hpp). Behind Sentinel
// (redis+sentinel://) it asks the sentinels for the master before each connect
// and moves to the new master on +switch-master.
//
// Threading: create and use a connection from one executor (strand or
// single-threaded io_context). It is owned through shared_ptr because its
// background loop holds a reference until stop() completes.
//
// Errors (as values): errc::not_connected when no link came up within the
// request's deadline (at once while the server refuses our AUTH, SELECT or TLS
// certificate: see last_error()), errc::connection_lost when the link dropped
// with the request in flight, errc::timeout when a reply did not come in time
// (the link is then reset, since later replies can no longer be matched),
// errc::shutting_down after stop(). A Redis error reply is *not* an error here:
// check reply::is_error().
#pragma once

#include "redis/command.hpp"
#include "redis/options.hpp"
#include "redis/reply.hpp"
#include "util/asio.hpp"

#include <spool/result.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace spool::redis {

namespace detail {
class cluster_router;
class switch_watch;
}  // namespace detail

// Counters of one connection, for tests and metrics.
struct connection_stats {
    std::uint64_t writes = 0;    // socket writes; each carries every request queued meanwhile
    std::uint64_t commands = 0;  // commands written
    std::uint64_t replies = 0;   // replies read
    std::uint64_t bytes_written = 0;
    std::uint64_t bytes_read = 0;
};

class connection : public std::enable_shared_from_this<connection> {
public:
    static std::shared_ptr<connection> create(asio::any_io_executor ex, connection_options opts);
    ~connection();

    // Starts the background connect/read/write loop. Call once, from the executor.
    // Requests made before start() fail at once with errc::not_connected.
    void start();
    // Closes the link, fails pending requests with errc::shutting_down, ends the loop.
    // Later requests fail at once with errc::shutting_down. Idempotent.
    void stop();

    // Sends one command and awaits its reply. `timeout` 0 uses options().request_timeout.
    // The deadline covers waiting for a link, the write and the reply. Cancelling the
    // awaiting operation (e.g. `exec(...) || timer`) completes it with
    // asio::error::operation_aborted; a reply still on its way is then discarded.
    // An empty command fails with errc::invalid_argument.
    asio::awaitable<result<reply>> exec(command cmd, std::chrono::milliseconds timeout = {});
    // Sends several commands in one write and awaits all their replies (in order).
    // Not a transaction: wrap in MULTI/EXEC yourself when atomicity matters.
    asio::awaitable<result<std::vector<reply>>> exec_many(std::vector<command> cmds,
                                                          std::chrono::milliseconds timeout = {});

    bool is_connected() const noexcept { return connected_; }
    // Waits until the link is up (true) or `timeout` passed (false).
    asio::awaitable<bool> wait_connected(std::chrono::milliseconds timeout);
    // Called (on the connection's executor) after every successful (re)connect.
    void on_connect(std::function<void()> fn) { on_connect_ = std::move(fn); }
    // Number of successful connects so far (a reconnect increments it).
    std::uint64_t connect_count() const noexcept { return connects_; }
    const connection_options& options() const noexcept { return opts_; }
    asio::any_io_executor get_executor() const noexcept { return ex_; }
    connection_stats stats() const noexcept;
    // Why the last connect attempt failed or the last link dropped ("" when none did).
    const std::string& last_error() const noexcept;

    struct impl;

    // True when this connection routes over a Redis Cluster.
    bool is_cluster() const noexcept { return bool(router_); }

private:
    connection(asio::any_io_executor ex, connection_options opts);
    asio::awaitable<void> run();
    void become_cluster();

    asio::any_io_executor ex_;
    connection_options opts_;
    std::unique_ptr<impl> impl_;
    bool connected_ = false;
    bool stopped_ = false;
    std::uint64_t connects_ = 0;
    std::function<void()> on_connect_;
    std::shared_ptr<detail::cluster_router> router_;
    std::unique_ptr<detail::switch_watch> sentinel_watch_;
};

}  // namespace spool::redis
