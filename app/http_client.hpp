// app/http_client.hpp
// A small blocking HTTP/1.1 client for the CLI (Beast over TCP; http:// only).
// Each call opens one connection (Connection: close), runs it on a private
// io_context and returns when done: connect and each read/write are bounded by
// `timeout`; a streamed body (SSE) is bounded per chunk by `idle_timeout`, never
// in total. Not thread-safe; one call at a time.
#pragma once

#include <spool/result.hpp>

#include <boost/beast/http/verb.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spool::cli {

struct http_response {
    unsigned status = 0;
    std::string body;
    std::string content_type;
    std::string retry_after;  // the Retry-After header, if any
    // stream() only: the transport error that cut a 2xx body short after the
    // header arrived (the server was reached; the connection dropped).
    boost::system::error_code stream_error;
};

using http_headers = std::vector<std::pair<std::string, std::string>>;

// A server address taken apart: "http://host:port/prefix" (scheme optional).
struct server_url {
    std::string host;
    std::string port = "80";
    std::string base_path;  // "" or "/prefix" (no trailing slash)
};

// Parses `text` (Boost.URL). Errors: invalid_argument (not a URL), or
// protocol_not_supported for schemes other than http.
result<server_url> parse_server_url(std::string_view text);

// One line for the user about a transport error: "connection refused",
// "timed out after 10 s", "unknown host", "connection closed by the server".
std::string describe_transport_error(const boost::system::error_code& ec, std::chrono::milliseconds timeout);

class http_client {
public:
    // `api_key`, when not empty, is sent as "Authorization: Bearer <key>".
    http_client(server_url url, std::string api_key,
                std::chrono::milliseconds timeout = std::chrono::seconds{10});

    // Sends one request (`target` is "/api/..." with its query; the base path is
    // prepended) and reads the whole response. A body, when given, is sent as
    // application/json. Transport failures come back as errors; any HTTP
    // status is a response.
    result<http_response> request(boost::beast::http::verb method, std::string_view target,
                                  std::string body = {}, const http_headers& headers = {});

    // GET `target` and hand the body to `on_data` chunk by chunk as it arrives,
    // until the server ends it or `on_data` returns false. A non-2xx response
    // is read whole and returned without calling on_data (the returned body is
    // empty for a streamed 2xx). `idle_timeout` bounds the wait for each chunk.
    // An error result means no response header arrived; a drop after it is
    // reported in stream_error.
    result<http_response> stream(std::string_view target, const http_headers& headers,
                                 const std::function<bool(std::string_view)>& on_data,
                                 std::chrono::milliseconds idle_timeout);

    std::chrono::milliseconds timeout() const noexcept { return timeout_; }

private:
    server_url url_;
    std::string api_key_;
    std::chrono::milliseconds timeout_;
};

// Percent-encodes everything but RFC 3986 unreserved characters (a path segment or
// a query value).
std::string url_encode(std::string_view s);

}  // namespace spool::cli
