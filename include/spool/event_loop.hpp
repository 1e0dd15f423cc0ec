// include/spool/event_loop.hpp
// Running an io_context with adaptive busy polling.
//
// A thread that blocks in the kernel (epoll_wait) between a Redis request and
// its reply pays a scheduler wake-up on every round trip: 40-80 µs on small
// virtual machines, more than Redis needs to run the command. Polling for a
// short while after each burst of work catches the reply without sleeping,
// which roughly halves the latency of each round trip; an idle loop still
// blocks, so it costs CPU only while work is flowing (at most `spin` after the
// last event of a burst).
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>

namespace spool {

// The default for `spool worker` (WORKER_BUSY_POLL_US / --busy-poll-us): off,
// because on a small host shared with redis-server a spinning worker takes CPU
// Redis needs; worth turning on for workers on hosts of their own.
inline constexpr std::chrono::microseconds default_busy_poll{0};

// Like io.run(): runs handlers on the calling thread until the io_context is
// stopped or runs out of work, and returns how many ran. After each handler it
// keeps polling (without blocking) for `spin` before it blocks for the next
// one. `spin` <= 0 is exactly io.run().
std::size_t run_polling(boost::asio::io_context& io, std::chrono::microseconds spin);

// The same, but returns as soon as `done()` holds (checked after each batch of
// handlers), e.g. when one awaited operation finished. `spin` <= 0 blocks for
// each handler in turn.
std::size_t run_polling(boost::asio::io_context& io, std::chrono::microseconds spin,
                        const std::function<bool()>& done);

}  // namespace spool
