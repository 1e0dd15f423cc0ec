// src/redis/transport.hpp
// Internal: the byte stream under a connection or subscriber. TCP, unix socket
// and TLS-over-TCP live in one variant so the read/write loops have a single
// code path. open() also runs the per-connect handshake (AUTH, SELECT,
// CLIENT SETNAME, INFO cluster when the mode is to be detected, ROLE behind a
// sentinel, PING), all within options.connect_timeout.
//
// Use from one executor. At most one read and one write in flight; open() only
// while neither is.
#pragma once

#include "redis/options.hpp"
#include "redis/reply_reader.hpp"
#include "util/asio.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <variant>

namespace spool::redis::detail {

struct open_result {
    boost::system::error_code ec;
    std::string why;        // for the log and connection::last_error()
    bool rejected = false;  // credentials, db or certificate refused: retrying soon will not help
    bool cluster_enabled = false;  // INFO cluster said cluster_enabled:1 (asked when cluster_mode::detect)
};

class transport {
public:
    using tcp_socket = asio::ip::tcp::socket;
    using unix_socket = asio::local::stream_protocol::socket;
    using tls_stream = asio::ssl::stream<tcp_socket>;
    using io_result = std::tuple<boost::system::error_code, std::size_t>;

    transport(asio::any_io_executor ex, const connection_options& opts);
    ~transport();
    transport(const transport&) = delete;
    transport& operator=(const transport&) = delete;

    // Connects and runs the handshake; `reader` is reset and then parses the
    // handshake replies. On failure the stream is closed.
    asio::awaitable<open_result> open(reply_reader& reader);
    // One read / one full write on the open stream (errors as values).
    asio::awaitable<io_result> read_some(asio::mutable_buffer buf);
    asio::awaitable<io_result> write(asio::const_buffer buf);
    // Closes the stream: pending reads and writes complete with an error, an
    // open() in progress fails. Idempotent.
    void close() noexcept;

private:
    asio::awaitable<open_result> open_stream();
    asio::awaitable<open_result> handshake(reply_reader& reader);
    void on_connect_timeout(std::uint64_t generation);

    asio::any_io_executor ex_;
    const connection_options& opts_;
    std::unique_ptr<asio::ssl::context> tls_ctx_;
    std::string tls_error_;  // non-empty: the TLS options could not be loaded
    std::variant<std::monostate, tcp_socket, unix_socket, tls_stream> stream_;
    asio::ip::tcp::resolver resolver_;
    asio::steady_timer connect_timer_;
    std::uint64_t generation_ = 0;  // which open() the connect timer belongs to
    bool opening_ = false;
    bool timed_out_ = false;
    bool closed_ = false;               // close() was called since open() began
    std::shared_ptr<transport*> self_;  // lets a late timer callback see that we are gone
};

}  // namespace spool::redis::detail
