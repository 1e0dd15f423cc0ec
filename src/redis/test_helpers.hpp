// src/redis/test_helpers.hpp
// Shared by the redis module's *_redistest.cpp files: an io_context that owns the
// connections and subscribers a test opens (stopped and drained at the end), and
// drive_until() to run that context while waiting for a condition.
#pragma once

#include "redis/connection.hpp"
#include "redis/subscriber.hpp"
#include "testing/redis_server.hpp"
#include "testing/run_coro.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace spool::redis::test {

using namespace std::chrono_literals;

// Runs `ctx` until `pred` holds or `timeout` passes; returns the last value of pred.
inline bool drive_until(asio::io_context& ctx, const std::function<bool()>& pred,
                        std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        if (ctx.stopped()) ctx.restart();
        if (ctx.run_one_for(5ms) == 0) std::this_thread::sleep_for(1ms);  // idle: poll interval
    }
}

// Options for a test server with quick reconnects.
inline connection_options fast(connection_options o) {
    o.backoff_min = 5ms;
    o.backoff_max = 100ms;
    o.connect_timeout = 1s;
    return o;
}

inline connection_options options_for(const spool::testing::redis_server& s) {
    return fast(parse_url(s.url()).value());
}

// Freezes a redis-server (SIGSTOP) until destroyed: its sockets stay open and
// silent, like a link that died without a FIN.
class frozen_server {
public:
    explicit frozen_server(int pid) : pid_{pid} { ::kill(pid_, SIGSTOP); }
    ~frozen_server() { ::kill(pid_, SIGCONT); }
    frozen_server(const frozen_server&) = delete;
    frozen_server& operator=(const frozen_server&) = delete;

private:
    int pid_;
};

class io_owner {
public:
    std::shared_ptr<connection> open(connection_options o) {
        auto c = connection::create(ctx.get_executor(), std::move(o));
        c->start();
        conns.push_back(c);
        return c;
    }
    std::shared_ptr<subscriber> open_subscriber(connection_options o, std::size_t max_queued = 100000) {
        auto s = subscriber::create(ctx.get_executor(), std::move(o), max_queued);
        s->start();
        subs.push_back(s);
        return s;
    }
    template <class T>
    T run(asio::awaitable<T> aw, std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
        return spool::testing::run_coro(ctx, std::move(aw), timeout);
    }
    // Stops everything opened and checks that every background loop ends promptly.
    void close_all() {
        for (auto& c : conns) c->stop();
        for (auto& s : subs) s->stop();
        ctx.restart();
        auto start = std::chrono::steady_clock::now();
        ctx.run_for(3s);
        EXPECT_LT(std::chrono::steady_clock::now() - start, 2s)
            << "background loops did not end after stop()";
        conns.clear();
        subs.clear();
    }

    asio::io_context ctx;
    std::vector<std::shared_ptr<connection>> conns;
    std::vector<std::shared_ptr<subscriber>> subs;
};

}  // namespace spool::redis::test
