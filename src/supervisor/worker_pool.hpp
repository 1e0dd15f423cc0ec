// src/supervisor/worker_pool.hpp
// The worker processes of `spool serve`: N children running `spool worker ...`,
// each its own process (a crash takes down one worker, never the API). A child
// that exits while the pool is running (crash, signal, or even exit 0) is
// started again after an exponential backoff (initial, doubling up to max; back
// to initial once a child has run `healthy_after`). stop() ends them in order:
// SIGTERM, a grace period for running jobs, then SIGKILL; every child is reaped.
#pragma once

#include "supervisor/child_process.hpp"
#include "util/asio.hpp"
#include "util/task_group.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace spool::supervisor {

struct worker_pool_options {
    // argv of one worker; argv[0] a path (e.g. "/proc/self/exe") or a name in PATH.
    std::vector<std::string> argv;
    std::size_t workers = 2;
    // Added to each child's environment, besides SPOOL_WORKER_SLOT=<0..N-1>.
    std::vector<std::string> env;
    std::chrono::milliseconds backoff_initial{500};
    std::chrono::milliseconds backoff_max{30'000};
    std::chrono::milliseconds healthy_after{60'000};
};

class worker_pool {
public:
    // All calls belong to `ex` (one thread). Destroy it after stop() completed, or
    // once the io_context no longer runs (its coroutines refer to this object).
    worker_pool(asio::any_io_executor ex, worker_pool_options opts);
    // Children still running are SIGKILLed and reaped (blocking); prefer stop().
    ~worker_pool();
    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;

    // Starts the N children (a slot whose start fails retries with backoff).
    // Call once.
    void start();
    // SIGTERM to every child, wait up to `grace`, SIGKILL the rest, reap all.
    // No restart happens once stop() began. Idempotent.
    asio::awaitable<void> stop(std::chrono::milliseconds grace);

    // Pids of the children running now, by slot (-1 for a slot between restarts).
    std::vector<int> pids() const;
    // Children running now.
    std::size_t running() const;
    // Restarts so far, over all slots.
    std::size_t restarts() const noexcept { return restarts_; }
    std::size_t size() const noexcept { return slots_.size(); }

private:
    struct slot {
        explicit slot(asio::any_io_executor ex) : backoff_timer{ex} {}
        std::size_t index = 0;
        std::unique_ptr<child_process> child;
        asio::steady_timer backoff_timer;
        std::size_t restarts = 0;
    };
    asio::awaitable<void> run_slot(slot* s);
    spawn_options spawn_options_for(const slot& s) const;

    asio::any_io_executor ex_;
    worker_pool_options opts_;
    std::vector<std::unique_ptr<slot>> slots_;
    bool stopping_ = false;
    std::size_t restarts_ = 0;
    task_group tasks_;
};

}  // namespace spool::supervisor
