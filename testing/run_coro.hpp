// testing/run_coro.hpp
// Runs an awaitable on a private io_context and returns its value; fails the
// test (and returns a default value) when it does not finish within `timeout`.
#pragma once

#include "util/asio.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <optional>

namespace spool::testing {

template <class T>
T run_coro(asio::io_context& ctx, asio::awaitable<T> aw, std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
    std::optional<T> out;
    std::exception_ptr error;
    asio::co_spawn(ctx, std::move(aw), [&](std::exception_ptr e, T v) {
        if (e) error = e;
        else out.emplace(std::move(v));
    });
    ctx.restart();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!out && !error && std::chrono::steady_clock::now() < deadline) {
        if (ctx.run_one_for(std::chrono::milliseconds{10}) == 0 && ctx.stopped()) ctx.restart();
    }
    if (error) std::rethrow_exception(error);
    if (!out) {
        ADD_FAILURE() << "run_coro: timed out after " << timeout.count() << " ms";
        return T{};
    }
    return std::move(*out);
}

inline void run_coro(asio::io_context& ctx, asio::awaitable<void> aw,
                     std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
    auto wrap = [](asio::awaitable<void> a) -> asio::awaitable<bool> {
        co_await std::move(a);
        co_return true;
    };
    run_coro<bool>(ctx, wrap(std::move(aw)), timeout);
}

}  // namespace spool::testing
