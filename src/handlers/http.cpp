// src/handlers/http.cpp
// One attempt is one connection and one request: `exchange` resolves, connects,
// (TLS handshakes), writes and reads; `watchdog` races it with the deadline and
// the job's cancellation and, when it wins, closes the socket so the exchange
// ends at once whatever step it is in.
#include "handlers/http.hpp"

#include "handlers/cancel.hpp"
#include "util/asio.hpp"

#include <spool/error.hpp>

#include <fmt/format.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>

#include <memory>
#include <optional>

namespace spool::handlers {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::size_t max_response_bytes = default_max_output_bytes;
constexpr std::size_t error_excerpt = 512;
constexpr std::size_t json_excerpt = 200;

struct http_settings {
    http_options opts;
    http::verb verb = http::verb::post;
    bool tls = false;
    bool host_is_ip = false;
    std::string host;  // to resolve and verify (IPv6 without brackets)
    std::string port;
    std::string host_header;  // host[:port] as in the URL
    std::string target;       // path and query
    std::string display;      // "POST https://host:port/path" (no user info, no query)
    std::chrono::seconds fallback_timeout{0};
    std::shared_ptr<ssl::context> ssl_ctx;
};

struct http_reply {
    boost::system::error_code ec;
    const char* step = "";
    unsigned status = 0;
    std::string body;
};

struct http_call {
    http_call(asio::any_io_executor ex, std::shared_ptr<const http_settings> s)
        : settings{std::move(s)}, resolver{ex}, timer{ex} {
        if (settings->tls)
            tls.emplace(ex, *settings->ssl_ctx);
        else
            plain.emplace(ex);
    }
    beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *plain; }
    void fail(boost::system::error_code ec, const char* step) {
        reply.ec = ec;
        reply.step = step;
    }
    // Ends whatever step the exchange is in.
    void abort() {
        resolver.cancel();
        lowest().close();
    }

    std::shared_ptr<const http_settings> settings;
    tcp::resolver resolver;
    std::optional<beast::tcp_stream> plain;
    std::optional<ssl::stream<beast::tcp_stream>> tls;
    asio::steady_timer timer;
    std::chrono::steady_clock::time_point deadline;
    http::request<http::string_body> request;
    http_reply reply;
};

template <class Stream>
asio::awaitable<void> send_and_receive(Stream& stream, std::shared_ptr<http_call> call) {
    call->lowest().expires_at(call->deadline);
    auto [wec, written] = co_await http::async_write(stream, call->request, use_tuple);
    if (wec) co_return call->fail(wec, "write");
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_response_bytes);
    call->lowest().expires_at(call->deadline);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec) co_return call->fail(rec, "read");
    call->reply.status = parser.get().result_int();
    call->reply.body = std::move(parser.get().body());
}

asio::awaitable<void> exchange(std::shared_ptr<http_call> call) {
    const http_settings& s = *call->settings;
    auto [ec, endpoints] = co_await call->resolver.async_resolve(s.host, s.port, use_tuple);
    if (ec) co_return call->fail(ec, "resolve");
    call->lowest().expires_at(call->deadline);
    auto [cec, endpoint] = co_await call->lowest().async_connect(endpoints, use_tuple);
    if (cec) co_return call->fail(cec, "connect");
    if (!call->tls) {
        co_await send_and_receive(*call->plain, call);
        co_return;
    }
    auto& stream = *call->tls;
    if (!s.host_is_ip && !SSL_set_tlsext_host_name(stream.native_handle(), s.host.c_str())) {
        boost::system::error_code sni{static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()};
        co_return call->fail(sni, "TLS SNI");
    }
    stream.set_verify_mode(ssl::verify_peer);
    stream.set_verify_callback(ssl::host_name_verification(s.host));
    call->lowest().expires_at(call->deadline);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) co_return call->fail(hec, "TLS handshake");
    co_await send_and_receive(stream, call);
}

asio::awaitable<void> watchdog(std::shared_ptr<http_call> call, job_context& ctx) {
    call->timer.expires_at(call->deadline);
    co_await (call->timer.async_wait(use_tuple) || ctx.wait_cancelled());
    call->abort();  // harmless when the exchange has finished first
}

std::string_view trim(std::string_view s) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

// At most `n` bytes of `s`, not ending inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, std::size_t n) {
    if (s.size() <= n) return s;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

std::string outcome(const http_reply& r, const http_settings& s) {
    if (r.ec == http::error::body_limit)
        throw job_failure{fmt::format("{}: response exceeds {} bytes", s.display, max_response_bytes)};
    if (r.ec) throw job_failure{fmt::format("{}: {}: {}", s.display, r.step, r.ec.message())};
    auto body = trim(r.body);
    if (r.status < 200 || r.status >= 300) {
        if (body.empty())
            throw job_failure{
                fmt::format("HTTP {} ({})", r.status, http::obsolete_reason(http::int_to_status(r.status)))};
        throw job_failure{fmt::format("HTTP {}: {}", r.status, utf8_prefix(body, error_excerpt))};
    }
    if (body.empty()) return "null";
    boost::system::error_code ec;
    boost::json::parse(body, ec);
    if (ec) {
        auto excerpt = utf8_prefix(body, json_excerpt);
        throw job_failure{fmt::format("HTTP {}: response is not JSON: {}: {}{}", r.status, ec.message(),
                                      excerpt, excerpt.size() < body.size() ? "..." : "")};
    }
    return std::string{body};
}

asio::awaitable<std::string> run_http(std::shared_ptr<const http_settings> s, job_context& ctx) {
    if (ctx.is_cancelled()) throw_cancelled(ctx);
    auto ex = co_await asio::this_coro::executor;
    auto call = std::make_shared<http_call>(ex, s);
    std::chrono::milliseconds timeout = s->opts.timeout;
    if (timeout.count() <= 0) timeout = ctx.timeout().count() > 0 ? ctx.timeout() : s->fallback_timeout;
    call->deadline = std::chrono::steady_clock::now() + timeout;

    auto& req = call->request;
    req.method(s->verb);
    req.target(s->target);
    req.version(11);
    req.keep_alive(false);
    req.set(http::field::host, s->host_header);
    req.set(http::field::user_agent, "spool");
    req.set(http::field::accept, "application/json");
    req.set(http::field::content_type, "application/json");
    req.set("X-Spool-Job-Id", ctx.id());
    req.set("X-Spool-Queue", ctx.queue());
    req.set("X-Spool-Attempt", std::to_string(ctx.attempt()));
    for (const auto& [name, value] : s->opts.headers) req.set(name, value);
    if (s->verb != http::verb::get && s->verb != http::verb::delete_) req.body() = ctx.payload();
    req.prepare_payload();

    auto winner = co_await (exchange(call) || watchdog(call, ctx));
    bool outer = (co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none;
    bool expired = std::chrono::steady_clock::now() >= call->deadline;
    if (ctx.is_cancelled()) throw_cancelled(ctx);
    if (winner.index() == 1 || outer || call->reply.ec == beast::error::timeout) {
        if (expired || call->reply.ec == beast::error::timeout)
            throw job_failure{fmt::format("timed out after {} ms", timeout.count())};
        throw job_failure{"cancelled"};
    }
    co_return outcome(call->reply, *s);
}

}  // namespace

result<handler> make_http_handler(const queue_policy& policy) {
    auto s = std::make_shared<http_settings>();
    s->opts = policy.http;
    s->fallback_timeout = policy.timeout;
    s->verb = http::string_to_verb(policy.http.method);
    if (s->verb == http::verb::unknown) return errc::config_error;

    auto u = boost::urls::parse_uri(policy.http.url);
    if (!u || u->encoded_host().empty()) return errc::config_error;
    if (u->scheme() == "https")
        s->tls = true;
    else if (u->scheme() != "http")
        return errc::config_error;
    auto type = u->host_type();
    s->host_is_ip = type == boost::urls::host_type::ipv4 || type == boost::urls::host_type::ipv6;
    s->host = type == boost::urls::host_type::ipv6 ? u->host_ipv6_address().to_string() : u->host_address();
    s->port = u->has_port() ? std::string{u->port()} : std::string{s->tls ? "443" : "80"};
    s->host_header = std::string{u->encoded_host_and_port()};
    s->target = std::string{u->encoded_target()};
    if (s->target.empty()) s->target = "/";
    s->display = fmt::format("{} {}://{}{}", policy.http.method, u->scheme(), u->encoded_host_and_port(),
                             u->encoded_path().empty() ? "/" : std::string_view{u->encoded_path()});
    if (s->tls) {
        s->ssl_ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
        boost::system::error_code ec;
        s->ssl_ctx->set_default_verify_paths(ec);  // without them every handshake fails verification
    }
    std::shared_ptr<const http_settings> settings = std::move(s);
    return handler::async([settings](job_context& ctx) { return run_http(settings, ctx); });
}

}  // namespace spool::handlers
