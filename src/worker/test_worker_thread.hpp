// src/worker/test_worker_thread.hpp
// For the worker's tests: a spool::worker running on an io_context thread of its
// own, as a separate `spool worker` process would; stopped (with a grace) on
// destruction.
#pragma once

#include <spool/worker.hpp>

#include "util/asio.hpp"

#include <chrono>
#include <functional>
#include <thread>

namespace spool::test {

class worker_thread {
public:
    worker_thread(worker_options opts, std::function<void(worker&)> setup) : w_{io_, std::move(opts)} {
        setup(w_);
        w_.start();
        thread_ = std::thread{[this] { io_.run(); }};
    }
    ~worker_thread() { stop(std::chrono::milliseconds{200}); }
    worker_thread(const worker_thread&) = delete;
    worker_thread& operator=(const worker_thread&) = delete;

    void stop(std::chrono::milliseconds grace) {
        if (!thread_.joinable()) return;
        asio::co_spawn(io_, w_.stop(grace), [this](std::exception_ptr) { io_.stop(); });
        thread_.join();
    }
    worker& get() { return w_; }

private:
    asio::io_context io_;
    worker w_;
    std::thread thread_;
};

}  // namespace spool::test
