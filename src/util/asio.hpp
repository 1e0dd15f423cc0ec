// src/util/asio.hpp
// The Asio spellings used everywhere: namespace alias, completion tokens and the
// awaitable operators (a || b, a && b). Boost 1.81 has no default completion
// token, so every async call names one of these.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace spool {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Suspends the calling coroutine for `d` (or until cancelled: returns false then).
inline asio::awaitable<bool> sleep_for(std::chrono::steady_clock::duration d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    auto [ec] = co_await t.async_wait(use_tuple);
    co_return !ec;
}

}  // namespace spool
