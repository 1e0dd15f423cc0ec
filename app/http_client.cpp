// app/http_client.cpp
#include "app/http_client.hpp"

#include "util/asio.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <cctype>
#include <exception>
#include <optional>

namespace spool::cli {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::string_view user_agent = "spool-cli/0.1";

// Runs `aw` to completion on `ctx`; the coroutine's own exceptions (bugs) are rethrown here.
result<http_response> run_blocking(asio::io_context& ctx, asio::awaitable<result<http_response>> aw) {
    std::optional<result<http_response>> out;
    std::exception_ptr error;
    asio::co_spawn(ctx, std::move(aw), [&](std::exception_ptr e, result<http_response> r) {
        if (e)
            error = e;
        else
            out.emplace(std::move(r));
    });
    ctx.run();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

std::string host_header(const server_url& u) {
    std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
    return u.port == "80" ? host : host + ":" + u.port;
}

template <class Request>
void set_common_headers(Request& req, const server_url& u, const std::string& api_key,
                        const http_headers& headers) {
    req.set(http::field::host, host_header(u));
    req.set(http::field::user_agent, user_agent);
    req.set(http::field::connection, "close");
    if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
    for (const auto& [name, value] : headers) req.set(name, value);
}

template <class Parser>
void fill_meta(http_response& r, const Parser& p) {
    const auto& msg = p.get();
    r.status = msg.result_int();
    if (auto it = msg.find(http::field::content_type); it != msg.end())
        r.content_type = std::string{it->value()};
    if (auto it = msg.find(http::field::retry_after); it != msg.end())
        r.retry_after = std::string{it->value()};
}

asio::awaitable<error_code> connect(beast::tcp_stream* stream, server_url url,
                                    std::chrono::milliseconds timeout) {
    tcp::resolver resolver{co_await asio::this_coro::executor};
    stream->expires_after(timeout);
    auto [ec, endpoints] = co_await resolver.async_resolve(url.host, url.port, use_tuple);
    if (ec) co_return ec;
    auto [cec, ep] = co_await stream->async_connect(endpoints, use_tuple);
    co_return cec;
}

asio::awaitable<result<http_response>> do_request(server_url url, std::chrono::milliseconds timeout,
                                                  http::request<http::string_body> req) {
    beast::tcp_stream stream{co_await asio::this_coro::executor};
    if (auto ec = co_await connect(&stream, url, timeout)) co_return ec;
    stream.expires_after(timeout);
    auto [wec, written] = co_await http::async_write(stream, req, use_tuple);
    if (wec) co_return wec;

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);  // results may be large; they are what the user asked for
    stream.expires_after(timeout);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec) co_return rec;
    http_response r;
    fill_meta(r, parser);
    r.body = std::move(parser.get().body());
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return r;
}

asio::awaitable<result<http_response>> do_stream(server_url url, std::chrono::milliseconds timeout,
                                                 std::chrono::milliseconds idle_timeout,
                                                 http::request<http::empty_body> req,
                                                 std::function<bool(std::string_view)> on_data) {
    beast::tcp_stream stream{co_await asio::this_coro::executor};
    if (auto ec = co_await connect(&stream, url, timeout)) co_return ec;
    stream.expires_after(timeout);
    auto [wec, written] = co_await http::async_write(stream, req, use_tuple);
    if (wec) co_return wec;

    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    stream.expires_after(timeout);
    auto [hec, hread] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    if (hec) co_return hec;
    http_response r;
    fill_meta(r, parser);
    bool streaming = r.status / 100 == 2;

    char chunk[8192];
    while (!parser.is_done()) {
        parser.get().body().data = chunk;
        parser.get().body().size = sizeof chunk;
        // A streamed body may be quiet for long; an error body is read like any response.
        stream.expires_after(streaming ? idle_timeout : timeout);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec == http::error::need_buffer) ec = {};
        std::size_t got = sizeof chunk - parser.get().body().size;
        if (got > 0) {
            std::string_view data{chunk, got};
            if (!streaming)
                r.body.append(data);
            else if (!on_data(data))
                break;
        }
        if (ec) {
            if (!streaming) co_return ec;
            r.stream_error = ec;
            co_return r;
        }
    }
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return r;
}

}  // namespace

result<server_url> parse_server_url(std::string_view text) {
    std::string full{text};
    if (full.find("://") == std::string::npos) full = "http://" + full;
    auto parsed = boost::urls::parse_uri(full);
    if (!parsed) return make_error_code(boost::system::errc::invalid_argument);
    const auto& u = *parsed;
    if (u.scheme_id() != boost::urls::scheme::http)
        return make_error_code(boost::system::errc::protocol_not_supported);
    server_url out;
    out.host = u.host_address();
    if (out.host.empty()) return make_error_code(boost::system::errc::invalid_argument);
    if (u.has_port()) {
        out.port = std::string{u.port()};
        if (out.port.empty() || u.port_number() == 0)
            return make_error_code(boost::system::errc::invalid_argument);
    }
    out.base_path = std::string{u.encoded_path()};
    while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
    return out;
}

std::string describe_transport_error(const error_code& ec, std::chrono::milliseconds timeout) {
    namespace ae = asio::error;
    if (ec == ae::connection_refused) return "connection refused";
    if (ec == beast::error::timeout || ec == ae::timed_out) {
        auto ms = timeout.count();
        return ms % 1000 == 0 ? "timed out after " + std::to_string(ms / 1000) + " s"
                              : "timed out after " + std::to_string(ms) + " ms";
    }
    if (ec == ae::host_not_found || ec == ae::host_not_found_try_again || ec == ae::no_data)
        return "unknown host";
    if (ec == http::error::end_of_stream || ec == ae::eof || ec == ae::connection_reset ||
        ec == http::error::partial_message)
        return "connection closed by the server";
    if (ec == ae::network_unreachable || ec == ae::host_unreachable) return "network unreachable";
    std::string msg = ec.message();
    if (!msg.empty()) msg[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(msg[0])));
    return msg;
}

http_client::http_client(server_url url, std::string api_key, std::chrono::milliseconds timeout)
    : url_{std::move(url)}, api_key_{std::move(api_key)}, timeout_{timeout} {}

result<http_response> http_client::request(http::verb method, std::string_view target, std::string body,
                                           const http_headers& headers) {
    http::request<http::string_body> req{method, url_.base_path + std::string{target}, 11};
    set_common_headers(req, url_, api_key_, headers);
    req.set(http::field::accept, "application/json");
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = std::move(body);
    }
    req.prepare_payload();
    asio::io_context ctx;
    return run_blocking(ctx, do_request(url_, timeout_, std::move(req)));
}

result<http_response> http_client::stream(std::string_view target, const http_headers& headers,
                                          const std::function<bool(std::string_view)>& on_data,
                                          std::chrono::milliseconds idle_timeout) {
    http::request<http::empty_body> req{http::verb::get, url_.base_path + std::string{target}, 11};
    set_common_headers(req, url_, api_key_, headers);
    req.set(http::field::accept, "text/event-stream");
    req.set(http::field::cache_control, "no-cache");
    asio::io_context ctx;
    return run_blocking(ctx, do_stream(url_, timeout_, idle_timeout, std::move(req), on_data));
}

std::string url_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            out += ch;
        else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

}  // namespace spool::cli
