// src/http/server.hpp
// Spool's HTTP API server: the REST routes, the /solve/async compatibility
// routes, Server-Sent Events, WebSocket, /health and /metrics
// (docs/http-api.md). `spool serve` constructs one per process.
//
// Threading: construct, start() and stop() on the io_context's thread; the
// io_context must be run by one thread (the broker and the Redis connection are
// single-executor objects). The broker, connection and subscriber are the
// caller's: the server neither starts nor stops them, and they must outlive it.
#pragma once

#include "http/server_options.hpp"
#include "redis/connection.hpp"
#include "redis/subscriber.hpp"
#include "store/broker.hpp"
#include "util/asio.hpp"
#include "util/clock.hpp"

#include <spool/result.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>

namespace spool::http {

class server {
public:
    // `sub` may be null: SSE and WebSocket subscriptions then only see new events
    // on their periodic re-read (every sse_ping_interval) and the job histograms
    // stay empty.
    server(asio::io_context& ioc, server_options opts, store::broker& broker,
           std::shared_ptr<redis::connection> conn, std::shared_ptr<redis::subscriber> sub,
           const clock& clk = system_clock::instance());
    // Call stop() (and let it complete) before destroying a started server: the
    // connections' coroutines refer to it until then.
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds host:port (synchronously: port() is valid on return) and starts
    // accepting and following job_updates. Errors: the bind/listen error, or
    // errc::invalid_argument for a host that is not an IP address.
    result<void> start();
    // The bound port (the ephemeral one when options().port was 0).
    std::uint16_t port() const noexcept;
    const server_options& options() const noexcept;

    // Graceful stop: stop accepting, let in-flight requests finish and close
    // idle keep-alive connections, end SSE streams and WebSockets (close frame);
    // whatever still runs after `drain` is cancelled. Idempotent.
    asio::awaitable<void> stop(std::chrono::milliseconds drain);

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace spool::http
