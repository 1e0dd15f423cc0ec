// src/http/http_session.hpp
// One HTTP connection: reads requests (keep-alive, pipelined ones in order),
// routes them, writes the responses; hands the connection to an sse_stream or a
// ws_session when a route asks for it.
//
// Limits (server_options): idle_timeout while waiting for a request's first
// byte; read_timeout for the rest of it (slow-loris senders are dropped);
// header_limit for the request line + headers (431); max_payload_bytes for the
// body (413, also straight from Content-Length). A request the parser rejects
// gets 400. After such an error the connection is closed: the send side first,
// then what the client still sends is drained for a moment so it reads the
// response instead of a reset.
#pragma once

#include "http/route.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <memory>
#include <optional>
#include <string>

namespace spool::http {

class ws_session;

class http_session : public std::enable_shared_from_this<http_session> {
public:
    http_session(server_state& s, const route_table& routes, asio::ip::tcp::socket sock);
    ~http_session();

    // Serves the connection until it closes. Registers itself in state.sessions meanwhile.
    asio::awaitable<void> run();
    // Graceful stop: an idle connection closes now, a busy one after its current
    // response, a stream says goodbye.
    void stop();

private:
    enum class phase { idle, busy, streaming };
    struct dispatched {
        route_output out;
        std::string pattern = "unmatched";
        bool websocket = false;
        std::string tenant;
        std::string client_key;
    };

    asio::awaitable<dispatched> dispatch(const request& req);
    // Writes `res` with the write timeout (only its header for a HEAD request);
    // false when the connection is unusable.
    asio::awaitable<bool> write(response res, bool header_only = false);
    // Error response before/while reading a request, then close (lingering).
    asio::awaitable<void> reject(response res);
    response too_large() const;
    void record(const request& req, const std::string& pattern, unsigned status,
                std::chrono::steady_clock::time_point start, const std::string& tenant);

    server_state& s_;
    const route_table& routes_;
    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
    std::string client_ip_;
    phase phase_ = phase::idle;
    std::shared_ptr<sse_stream> sse_;
    std::shared_ptr<ws_session> ws_;
};

// Why a request's header cannot be served safely (RFC 9112: Host missing or
// repeated, a Transfer-Encoding other than plain chunked, or with Content-Length),
// or nullopt. Such a request is answered 400 and its connection closed.
std::optional<std::string> framing_problem(const beast_http::request_header<>& head);

// The rate-limit key of a client: "k:<hash of the API key>" with auth, else "ip:<address>".
std::string client_rate_key(std::string_view api_key, std::string_view client_ip);

}  // namespace spool::http
