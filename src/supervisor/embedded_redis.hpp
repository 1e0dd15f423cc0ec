// src/supervisor/embedded_redis.hpp
// The redis-server child `spool serve` runs when no Redis is configured: AOF on
// (appendfsync everysec), data under data_dir, listening on a unix socket inside
// data_dir (or on a free loopback port), dying with its parent, stopped with
// SIGTERM (Redis then flushes the AOF) and SIGKILL after a deadline. If it dies
// while serving, it is started again on the same socket/port and data, with
// exponential backoff.
//
// data_dir is locked (flock on data_dir/spool.lock) while this object runs Redis
// there, so two `spool serve` processes never share one AOF. A leftover
// redis-server of a previous run (found through data_dir/redis.pid: a live
// redis-server process whose working directory is data_dir) is stopped first; a
// stale socket file is removed.
#pragma once

#include "supervisor/child_process.hpp"
#include "util/asio.hpp"
#include "util/task_group.hpp"

#include <spool/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace spool::supervisor {

struct embedded_redis_options {
    std::filesystem::path data_dir = "spool-data";  // created when missing
    bool use_tcp = false;                  // listen on 127.0.0.1:<free port> instead of <data_dir>/redis.sock
    std::string program = "redis-server";  // name looked up in PATH, or a path
    bool rdb_snapshots = false;            // false: `save ""` (the AOF alone is the durable copy)
    std::chrono::milliseconds start_timeout{10'000};  // until it answers PING
    std::chrono::milliseconds stop_timeout{10'000};   // SIGTERM → SIGKILL
    std::chrono::milliseconds restart_backoff_initial{500};
    std::chrono::milliseconds restart_backoff_max{30'000};
};

class embedded_redis {
public:
    // All calls belong to `ex` (one thread). Destroy it after stop() completed, or
    // once the io_context no longer runs (its monitor coroutine refers to this object).
    embedded_redis(asio::any_io_executor ex, embedded_redis_options opts);
    // Stops a still running redis-server (blocking: SIGTERM, bounded wait, SIGKILL).
    ~embedded_redis();
    embedded_redis(const embedded_redis&) = delete;
    embedded_redis& operator=(const embedded_redis&) = delete;

    // Starts redis-server and waits until it answers PING. Returns the URL clients
    // use: "unix:///abs/data_dir/redis.sock" or "redis://127.0.0.1:<port>/0".
    // Errors (details in last_error()): no_such_file_or_directory when
    // redis-server is not installed, device_or_resource_busy when data_dir is in
    // use by another `spool serve`, timed_out when it does not answer within
    // start_timeout, or the error of creating data_dir / starting the process.
    asio::awaitable<result<std::string>> start();
    // SIGTERM, wait up to `grace` (default stop_timeout), then SIGKILL; reaps the
    // child and releases data_dir. Idempotent.
    asio::awaitable<void> stop();
    asio::awaitable<void> stop(std::chrono::milliseconds grace);

    // A sentence for the user, naming the cause and the fix, after start() failed.
    const std::string& last_error() const noexcept { return last_error_; }
    const std::string& url() const noexcept { return url_; }
    std::filesystem::path data_dir() const { return dir_; }
    std::filesystem::path socket_path() const { return dir_ / "redis.sock"; }
    std::filesystem::path log_path() const { return dir_ / "redis.log"; }
    std::uint16_t port() const noexcept { return port_; }  // 0 in unix socket mode
    int pid() const noexcept { return child_ ? child_->pid() : -1; }
    bool running() const noexcept { return child_ && child_->running(); }
    std::size_t restarts() const noexcept { return restarts_; }

private:
    boost::system::error_code fail(boost::system::error_code ec, std::string message);
    boost::system::error_code prepare_dir();
    boost::system::error_code check_socket_path();
    boost::system::error_code socket_in_use();
    asio::awaitable<void> stop_leftover();
    boost::system::error_code write_config() const;
    asio::awaitable<boost::system::error_code> launch();
    asio::awaitable<bool> answers_ping();
    asio::awaitable<void> monitor();
    std::string log_tail() const;
    void release_lock() noexcept;

    asio::any_io_executor ex_;
    embedded_redis_options opts_;
    std::filesystem::path dir_;
    std::string program_path_;
    std::string url_;
    std::string last_error_;
    std::uint16_t port_ = 0;
    int lock_fd_ = -1;
    bool stopping_ = false;
    std::size_t restarts_ = 0;
    std::unique_ptr<child_process> child_;
    task_group tasks_;
    asio::steady_timer backoff_timer_;
};

}  // namespace spool::supervisor
