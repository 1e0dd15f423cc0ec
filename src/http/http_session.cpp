// src/http/http_session.cpp
#include "http/http_session.hpp"

#include "http/sse_stream.hpp"
#include "http/ws_session.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include <fmt/format.h>

#include <optional>

namespace spool::http {

namespace beast = boost::beast;

namespace {

// Parse errors that mean "the client sent something broken" (400) rather than
// "the connection went away".
bool is_bad_request(const boost::system::error_code& ec) {
    if (ec.category() != beast_http::make_error_code(beast_http::error::bad_method).category()) return false;
    switch (static_cast<beast_http::error>(ec.value())) {
        case beast_http::error::end_of_stream:
        case beast_http::error::partial_message:
        case beast_http::error::need_more:
        case beast_http::error::need_buffer:
        case beast_http::error::buffer_overflow:
        case beast_http::error::header_limit:
        case beast_http::error::body_limit:
            return false;
        default:
            return true;
    }
}

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

}  // namespace

std::optional<std::string> framing_problem(const beast_http::request_header<>& head) {
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1 (and never two in any version).
    auto hosts = head.count(beast_http::field::host);
    if (hosts > 1) return "more than one Host header";
    if (hosts == 0 && head.version() >= 11) return "missing Host header (required in HTTP/1.1)";
    // RFC 9112 §6.1: a body framed by anything but plain chunked coding cannot be
    // delimited here; reading on would run the body as the next request.
    auto te = head.count(beast_http::field::transfer_encoding);
    if (te > 1) return "more than one Transfer-Encoding header";
    if (te == 1) {
        auto v = head[beast_http::field::transfer_encoding];
        std::string_view value{v.data(), v.size()};
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        if (!beast::iequals(value, "chunked"))
            return fmt::format("unsupported Transfer-Encoding \"{}\" (only \"chunked\" is accepted)", value);
        if (head.count(beast_http::field::content_length) > 0)
            return "both Transfer-Encoding and Content-Length";
        if (head.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
    }
    return std::nullopt;
}

std::string client_rate_key(std::string_view api_key, std::string_view client_ip) {
    if (!api_key.empty()) return fmt::format("k:{:016x}", fnv1a(api_key));
    return fmt::format("ip:{}", client_ip);
}

http_session::http_session(server_state& s, const route_table& routes, asio::ip::tcp::socket sock)
    : s_{s}, routes_{routes}, stream_{std::move(sock)} {
    boost::system::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) client_ip_ = ep.address().to_string();
}

http_session::~http_session() = default;

void http_session::stop() {
    switch (phase_) {
        case phase::idle:
            stream_.cancel();
            break;
        case phase::busy:
            break;  // run() sees state.stopping and closes after the response
        case phase::streaming:
            if (sse_) sse_->stop();
            if (ws_) ws_->stop();
            break;
    }
}

void http_session::record(const request& req, const std::string& pattern, unsigned status,
                          std::chrono::steady_clock::time_point start, const std::string& tenant) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto method = beast_http::to_string(req.method());
    s_.stats.observe_request(pattern, std::string_view{method.data(), method.size()}, status, secs);
    if (s_.log->should_log(spdlog::level::debug)) {
        std::string_view target{req.target().data(), req.target().size()};
        if (target.find("access_token=") != std::string_view::npos)
            target = target.substr(0, target.find('?'));
        s_.log->debug("request method={} target={} route={} status={} ms={:.3f} ip={} tenant={} bytes_in={}",
                      std::string_view{method.data(), method.size()}, target, pattern, status, secs * 1000,
                      client_ip_, tenant, req.body().size());
    }
}

asio::awaitable<bool> http_session::write(response res, bool header_only) {
    stream_.expires_after(s_.opts.write_timeout);
    if (header_only) {
        // HEAD: the header GET would send, Content-Length included, and no body.
        beast_http::response_serializer<beast_http::string_body> sr{res};
        auto [ec, n] = co_await beast_http::async_write_header(stream_, sr, use_tuple);
        co_return !ec;
    }
    auto [ec, n] = co_await beast_http::async_write(stream_, res, use_tuple);
    co_return !ec;
}

asio::awaitable<void> http_session::reject(response res) {
    res.keep_alive(false);
    res.set(beast_http::field::server, "spool");
    res.prepare_payload();
    if (!co_await write(std::move(res))) co_return;
    // Lingering close: stop sending, then swallow what the client is still
    // sending (bounded) so its socket reads our response instead of a reset.
    boost::system::error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds{2});
    std::size_t drained = 0;
    char sink[16 * 1024];
    while (drained < 8 * s_.opts.max_payload_bytes + (1 << 20)) {
        auto [rec, n] = co_await stream_.async_read_some(asio::buffer(sink), use_tuple);
        if (rec) break;
        drained += n;
    }
}

asio::awaitable<http_session::dispatched> http_session::dispatch(const request& req) {
    dispatched d;
    std::string_view target{req.target().data(), req.target().size()};
    auto url = boost::urls::parse_origin_form(target);
    if (!url) {
        d.out.res =
            error_response(beast_http::status::bad_request, "bad_request", "malformed request target");
        co_return d;
    }
    std::vector<std::string> segments;
    for (auto seg : url->segments()) segments.push_back(std::string(seg));
    if (!segments.empty() && segments.back().empty()) segments.pop_back();  // one trailing slash
    auto m = routes_.routes().match(req.method(), segments);
    if (m.kind == match_kind::not_found) {
        d.out.res = error_response(
            beast_http::status::not_found, "not_found",
            fmt::format("no route for {} {}", std::string_view{beast_http::to_string(req.method())},
                        std::string_view{url->path()}));
        co_return d;
    }
    if (m.kind == match_kind::method_not_allowed) {
        d.out.res = error_response(beast_http::status::method_not_allowed, "method_not_allowed",
                                   "allowed methods: " + m.allow);
        d.out.res.set(beast_http::field::allow, m.allow);
        co_return d;
    }
    const auto& entry = routes_.entry(m.id);
    d.pattern = entry.pattern;

    request_context ctx;
    ctx.state = &s_;
    ctx.req = &req;
    ctx.params = std::move(m.params);
    for (auto p : url->params()) ctx.query.emplace_back(std::string(p.key), std::string(p.value));
    ctx.client_ip = client_ip_;

    if (entry.access != route_access::open) {
        std::string key;
        if (s_.auth_enabled()) {
            key = bearer_token(req);
            // Browsers cannot set headers on a WebSocket upgrade: /ws also takes the
            // key as ?access_token= (the dashboard's live updates).
            if (key.empty() && entry.access == route_access::websocket)
                for (const auto& [k, v] : ctx.query)
                    if (k == "access_token") key = v;
            auto it = key.empty() ? s_.opts.api_keys.end() : s_.opts.api_keys.find(key);
            if (it == s_.opts.api_keys.end()) {
                d.out = error_output(errc::unauthorized, key.empty()
                                                             ? "missing API key (Authorization: Bearer <key>)"
                                                             : "unknown API key");
                d.out.res.set(beast_http::field::www_authenticate, "Bearer");
                co_return d;
            }
            ctx.tenant = it->second;
        }
        d.tenant = ctx.tenant;
        d.client_key = client_rate_key(key, client_ip_);
        if (s_.limiter.enabled()) {
            auto decision = co_await s_.limiter.check(d.client_key, s_.now());
            if (!decision.allowed) {
                d.out = error_output(api_error{errc::rate_limited, "", decision.retry_after});
                co_return d;
            }
        }
    }
    if (entry.access == route_access::websocket) {
        if (!beast::websocket::is_upgrade(req)) {
            d.out.res = error_response(beast_http::status::upgrade_required, "upgrade_required",
                                       "this route speaks WebSocket only");
            d.out.res.set(beast_http::field::upgrade, "websocket");
            co_return d;
        }
        d.websocket = true;
        co_return d;
    }
    d.out = co_await entry.fn(std::move(ctx));
    co_return d;
}

response http_session::too_large() const {
    api_error e;
    e.ec = errc::payload_too_large;
    e.message = fmt::format("request body exceeds the limit of {} bytes", s_.opts.max_payload_bytes);
    return error_response(e);
}

asio::awaitable<void> http_session::run() {
    auto self = shared_from_this();
    s_.sessions.insert(this);
    struct unregister {
        server_state& s;
        http_session* me;
        ~unregister() { s.sessions.erase(me); }
    } guard{s_, this};

    for (;;) {
        phase_ = phase::idle;
        if (s_.stopping) break;
        if (buffer_.size() == 0) {
            // Keep-alive: wait for the first byte of the next request.
            stream_.expires_after(s_.opts.idle_timeout);
            auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), use_tuple);
            if (ec) break;
            buffer_.commit(n);
        }
        phase_ = phase::busy;
        auto start = std::chrono::steady_clock::now();
        beast_http::request_parser<beast_http::string_body> parser;
        parser.header_limit(s_.opts.header_limit);
        parser.body_limit(s_.opts.max_payload_bytes);
        stream_.expires_after(s_.opts.read_timeout);
        auto [hec, hn] = co_await beast_http::async_read_header(stream_, buffer_, parser, use_tuple);
        // Errors are answered (then the connection closed) or just closed. The
        // response is built outside the co_await (g++ 12 temporaries bug).
        std::optional<response> rejection;
        if (hec == beast_http::error::header_limit) {
            rejection = error_response(
                beast_http::status::request_header_fields_too_large, "header_too_large",
                fmt::format("the request line and headers exceed {} bytes", s_.opts.header_limit));
        } else if (hec == beast_http::error::body_limit) {
            // Beast checks Content-Length against the body limit while parsing the header.
            rejection = too_large();
        } else if (hec && is_bad_request(hec)) {
            rejection = error_response(beast_http::status::bad_request, "bad_request",
                                       "malformed HTTP request: " + hec.message());
        }
        if (rejection) co_await reject(std::move(*rejection));
        if (hec) break;
        auto& head = parser.get();
        if (auto problem = framing_problem(head)) {
            rejection = error_response(beast_http::status::bad_request, "bad_request",
                                       "malformed HTTP request: " + *problem);
            record(head, "unmatched", 400, start, {});
            co_await reject(std::move(*rejection));
            break;
        }
        auto expect = head[beast_http::field::expect];
        if (beast::iequals(expect, "100-continue") && !parser.is_done()) {
            beast_http::response<beast_http::empty_body> cont{beast_http::status::continue_, head.version()};
            stream_.expires_after(s_.opts.write_timeout);
            auto [cec, cn] = co_await beast_http::async_write(stream_, cont, use_tuple);
            if (cec) break;
            stream_.expires_after(s_.opts.read_timeout);
        }
        auto [bec, bn] = co_await beast_http::async_read(stream_, buffer_, parser, use_tuple);
        if (bec == beast_http::error::body_limit) {
            rejection = too_large();
        } else if (bec && is_bad_request(bec)) {
            rejection = error_response(beast_http::status::bad_request, "bad_request",
                                       "malformed HTTP request: " + bec.message());
        }
        if (rejection) co_await reject(std::move(*rejection));
        if (bec) break;
        request req = parser.release();
        stream_.expires_never();  // the route may take its time (Redis has its own deadlines)

        auto d = co_await dispatch(req);
        const bool head_only = req.method() == beast_http::verb::head;
        if (d.out.stream && head_only) {
            // HEAD of an event stream: its header, and no stream.
            record(req, d.pattern, 200, start, d.tenant);
            auto header = sse_stream::make_header(req.version());
            header.set(beast_http::field::server, "spool");
            header.keep_alive(false);
            beast_http::response_serializer<beast_http::empty_body> sr{header};
            stream_.expires_after(s_.opts.write_timeout);
            co_await beast_http::async_write_header(stream_, sr, use_tuple);
            break;
        }
        if (d.websocket) {
            record(req, d.pattern, 101, start, d.tenant);
            phase_ = phase::streaming;
            ws_ = std::make_shared<ws_session>(s_, d.tenant, d.client_key);
            if (s_.stopping) ws_->stop();
            co_await ws_->run(std::move(stream_), std::move(req));
            co_return;
        }
        if (d.out.stream) {
            record(req, d.pattern, 200, start, d.tenant);
            phase_ = phase::streaming;
            sse_ = std::move(d.out.stream);
            if (s_.stopping) sse_->stop();
            auto leftover = beast::buffers_to_string(buffer_.data());
            co_await sse_->run(stream_.release_socket(), std::move(leftover), req.version() >= 11,
                               req.version());
            co_return;
        }
        auto& res = d.out.res;
        bool keep = req.keep_alive() && !s_.stopping;
        res.version(req.version());
        res.keep_alive(keep);
        res.set(beast_http::field::server, "spool");
        res.prepare_payload();
        record(req, d.pattern, res.result_int(), start, d.tenant);
        if (!co_await write(std::move(res), head_only)) break;
        if (!keep) {
            boost::system::error_code ec;
            stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
            break;
        }
    }
    boost::system::error_code ec;
    stream_.socket().close(ec);
}

}  // namespace spool::http
