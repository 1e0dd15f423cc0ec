// src/http/sse_stream.cpp
#include "http/sse_stream.hpp"

#include "http/sse_format.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/write.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <fmt/format.h>

namespace spool::http {

sse_stream::sse_stream(server_state& s, std::string job_id, std::string last_id, bool terminal)
    : s_{s},
      job_id_{std::move(job_id)},
      last_id_{std::move(last_id)},
      terminal_at_start_{terminal},
      doorbell_{s.ex} {}

beast_http::response<beast_http::empty_body> sse_stream::make_header(unsigned version) {
    beast_http::response<beast_http::empty_body> res{beast_http::status::ok, version};
    res.set(beast_http::field::content_type, "text/event-stream");
    res.set(beast_http::field::cache_control, "no-cache");
    res.set("X-Accel-Buffering", "no");  // reverse proxies: do not buffer the stream
    if (version >= 11) {
        res.chunked(true);
    } else {
        res.keep_alive(false);
    }
    return res;
}

void sse_stream::on_update(const job_update&) {
    dirty_ = true;
    doorbell_.cancel();
}

void sse_stream::stop() {
    stopping_ = true;
    doorbell_.cancel();
}

asio::awaitable<bool> sse_stream::write(std::string data) {
    if (chunked_) {
        std::string framed = fmt::format("{:x}\r\n", data.size());
        framed += data;
        framed += "\r\n";
        data = std::move(framed);
    }
    asio::steady_timer timeout{s_.ex, s_.opts.write_timeout};
    auto r =
        co_await (asio::async_write(*sock_, asio::buffer(data), use_tuple) || timeout.async_wait(use_tuple));
    if (r.index() == 1) co_return false;  // slow consumer
    auto [ec, n] = std::get<0>(r);
    co_return !ec;
}

asio::awaitable<void> sse_stream::watch_peer() {
    // A client sends nothing on an event stream: any read completion means it
    // closed (or broke) the connection.
    char buf[512];
    for (;;) {
        auto [ec, n] = co_await sock_->async_read_some(asio::buffer(buf), use_tuple);
        if (ec) co_return;
    }
}

asio::awaitable<void> sse_stream::pump() {
    auto reg = s_.hub.watch_job(job_id_, this);
    bool ended = false;
    while (!ended && !stopping_) {
        dirty_ = false;
        auto evs = co_await s_.broker.events(job_id_, last_id_, batch);
        if (evs) {
            for (auto& e : *evs) {
                if (!co_await write(format_sse(e))) co_return;
                last_id_ = e.id;
                if (is_terminal_event(e)) {
                    ended = true;
                    break;
                }
            }
            if (ended) break;
            if (evs->size() == batch) continue;  // more waiting: read on
            if (terminal_at_start_) {
                // The replay of a finished job is complete but held no terminal
                // event: the client saw it (its Last-Event-ID is that event's), or its
                // id is past the end, and then it gets the terminal event. Then end.
                auto fin = co_await final_event(s_, job_id_);
                if (fin) {
                    if (fin->id != last_id_) co_await write(format_sse(*fin));
                    break;
                }
                terminal_at_start_ = false;  // retried meanwhile: live again, follow it
            }
        } else if (evs.error() == errc::job_not_found) {
            break;  // deleted
        }
        if (dirty_ || stopping_) continue;
        doorbell_.expires_after(s_.opts.sse_ping_interval);
        auto [ec] = co_await doorbell_.async_wait(use_tuple);
        if (!ec) {
            // Idle for a whole interval: keep proxies and clients from timing out,
            // and make sure the job still exists.
            if (!co_await write(format_sse_comment("ping"))) co_return;
            auto rec = co_await s_.broker.get(job_id_);
            if (!rec && rec.error() == errc::job_not_found) break;
            if (rec && is_terminal(rec->status)) terminal_at_start_ = true;  // read the rest, then end
            dirty_ = true;
        }
    }
    if (chunked_) {
        // The last chunk ends the response body.
        asio::steady_timer timeout{s_.ex, s_.opts.write_timeout};
        std::string last = "0\r\n\r\n";
        co_await (asio::async_write(*sock_, asio::buffer(last), use_tuple) || timeout.async_wait(use_tuple));
    }
}

asio::awaitable<void> sse_stream::run(asio::ip::tcp::socket sock, std::string leftover, bool chunked,
                                      unsigned version) {
    (void)leftover;  // bytes a client pipelined after the request: an event stream ignores them
    auto self = shared_from_this();
    sock_ = std::make_unique<asio::ip::tcp::socket>(std::move(sock));
    chunked_ = chunked;
    auto header = make_header(version);
    beast_http::response_serializer<beast_http::empty_body> sr{header};
    {
        asio::steady_timer timeout{s_.ex, s_.opts.write_timeout};
        auto r =
            co_await (beast_http::async_write_header(*sock_, sr, use_tuple) || timeout.async_wait(use_tuple));
        if (r.index() == 1 || std::get<0>(std::get<0>(r))) co_return;
    }
    co_await (pump() || watch_peer());
    boost::system::error_code ec;
    sock_->shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    sock_->close(ec);
}

}  // namespace spool::http
