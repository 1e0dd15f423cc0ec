// src/redis/cluster.hpp
// Internal: a Redis Cluster behind one `connection`. Learns the slot map
// (CLUSTER SLOTS) from any seed or known node, keeps one pipelined connection per
// master (opened on first use; TLS and AUTH as configured), routes every command
// and script by its first key's slot, follows MOVED (the map is corrected at once
// and reloaded in the background) and ASK (ASKING first), and retries TRYAGAIN,
// CLUSTERDOWN and requests that never reached a node (a master down, a failover)
// with bounded backoff until their deadline. A reply that was lost with its link
// (connection_lost) is not retried: the command may have run, the caller decides.
#pragma once

#include "redis/command.hpp"
#include "redis/connection.hpp"
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

namespace spool::redis::detail {

class cluster_router : public std::enable_shared_from_this<cluster_router> {
public:
    using time_point = std::chrono::steady_clock::time_point;

    static std::shared_ptr<cluster_router> create(asio::any_io_executor ex, connection_options opts);
    ~cluster_router();

    void start();
    void stop();

    asio::awaitable<result<reply>> exec(command cmd, time_point deadline);
    asio::awaitable<result<std::vector<reply>>> exec_many(std::vector<command> cmds, time_point deadline);

    // Called with true when the map becomes complete, false when it no longer is.
    std::function<void(bool)> on_state;
    connection_stats stats() const;
    const std::string& last_error() const noexcept { return last_error_; }

private:
    cluster_router(asio::any_io_executor ex, connection_options opts);
    std::shared_ptr<connection> node(const endpoint& e);
    std::shared_ptr<connection> route(const command& cmd);
    std::shared_ptr<connection> any_master();
    void want_refresh();
    asio::awaitable<bool> refresh();
    asio::awaitable<void> run();
    asio::awaitable<bool> pause(std::chrono::milliseconds d, time_point deadline);
    void set_ready(bool r);

    struct node_entry {
        endpoint at;
        std::shared_ptr<connection> conn;
    };

    asio::any_io_executor ex_;
    connection_options opts_;
    std::vector<node_entry> nodes_;                   // every node opened so far
    std::vector<std::shared_ptr<connection>> slots_;  // slot -> its master's connection (null: unknown)
    std::vector<std::shared_ptr<connection>> masters_;
    std::size_t next_any_ = 0;
    asio::steady_timer wake_;  // run() waits here for a refresh request
    asio::steady_timer pace_;  // and here between two refreshes
    bool refresh_wanted_ = false;
    bool started_ = false;
    bool stopped_ = false;
    bool ready_ = false;
    std::string last_error_;
};

}  // namespace spool::redis::detail
