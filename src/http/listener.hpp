// src/http/listener.hpp
// The accept loop: one http_session coroutine per connection, spawned into the
// server's session task group. Over max_connections a connection gets a canned
// 503 and is closed at once.
#pragma once

#include "http/route.hpp"
#include "util/task_group.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>

namespace spool::http {

class listener {
public:
    listener(server_state& s, const route_table& routes, task_group& sessions);

    // Opens, binds and listens (synchronously, so the port is known on return).
    // Errors: the system error of bind/listen (address in use, bad address).
    result<void> bind(const std::string& host, std::uint16_t port);
    std::uint16_t port() const noexcept { return port_; }

    // Accepts until close() or cancellation.
    asio::awaitable<void> run();
    // Stops accepting (pending accept completes with operation_aborted).
    void close();

private:
    server_state& s_;
    const route_table& routes_;
    task_group& sessions_;
    asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
};

}  // namespace spool::http
