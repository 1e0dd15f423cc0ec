// src/http/listener.cpp
#include "http/listener.hpp"

#include "http/http_session.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/ip/address.hpp>

namespace spool::http {

namespace {

constexpr std::string_view too_many =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    "Retry-After: 1\r\nContent-Length: 78\r\n\r\n"
    R"({"error":{"code":"too_many_connections","message":"connection limit reached"}})";

}  // namespace

listener::listener(server_state& s, const route_table& routes, task_group& sessions)
    : s_{s}, routes_{routes}, sessions_{sessions}, acceptor_{s.ex} {}

result<void> listener::bind(const std::string& host, std::uint16_t port) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    if (ec) return errc::invalid_argument;
    asio::ip::tcp::endpoint ep{addr, port};
    acceptor_.open(ep.protocol(), ec);
    if (ec) return ec;
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    acceptor_.bind(ep, ec);
    if (ec) return ec;
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ec;
    port_ = acceptor_.local_endpoint(ec).port();
    return {};
}

void listener::close() {
    boost::system::error_code ec;
    acceptor_.close(ec);
}

asio::awaitable<void> listener::run() {
    for (;;) {
        auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open() || s_.stopping) co_return;
            // Out of file descriptors and the like: back off a little instead of spinning.
            s_.log->warn("accept: {}", ec.message());
            constexpr std::chrono::milliseconds pause{50};
            if (!co_await sleep_for(pause)) co_return;
            continue;
        }
        if (s_.stopping) co_return;
        if (s_.sessions.size() >= s_.opts.max_connections) {
            // A tiny write into an empty socket buffer: non-blocking, never waits.
            boost::system::error_code wec;
            sock.non_blocking(true, wec);
            sock.write_some(asio::buffer(too_many.data(), too_many.size()), wec);
            sock.shutdown(asio::ip::tcp::socket::shutdown_both, wec);
            sock.close(wec);
            continue;
        }
        sock.set_option(asio::ip::tcp::no_delay(true), ec);
        auto session = std::make_shared<http_session>(s_, routes_, std::move(sock));
        sessions_.spawn(session->run(), "http_session");
    }
}

}  // namespace spool::http
