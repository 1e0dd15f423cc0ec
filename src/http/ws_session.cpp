// src/http/ws_session.cpp
#include "http/ws_session.hpp"

#include "http/job_json.hpp"
#include "http/sse_format.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"
#include "util/time_format.hpp"

#include <spool/error.hpp>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace spool::http {

namespace json = boost::json;
namespace websocket = boost::beast::websocket;

ws_session::ws_session(server_state& s, std::string tenant, std::string client_key)
    : s_{s},
      tenant_{std::move(tenant)},
      client_key_{std::move(client_key)},
      outbox_ready_{s.ex},
      doorbell_{s.ex} {}

void ws_session::on_update(const job_update& u) {
    if (closed_) return;
    if (all_updates_ && u.raw) {
        // Forwarded as published; a tenant scoped by an API key sees only its own
        // jobs' updates. Whose a job is comes from its record, looked up once per
        // job (pump); its updates wait in order until then.
        if (!tenant_scoped()) {
            forward_update(*u.raw);
        } else if (auto known = owned_.find(u.job_id); known != owned_.end()) {
            if (known->second) forward_update(*u.raw);
        } else {
            auto& waiting = unresolved_[u.job_id];
            if (waiting.size() >= s_.opts.stream_queue_limit) return close_now();
            waiting.push_back(*u.raw);
            doorbell_.cancel();
        }
    }
    if (subs_.count(u.job_id)) {
        dirty_.insert(u.job_id);
        doorbell_.cancel();
    }
}

bool ws_session::tenant_scoped() const noexcept { return !tenant_.empty() && tenant_ != admin_tenant; }

void ws_session::forward_update(const std::string& raw) {
    if (closed_) return;
    if (outbox_.size() >= s_.opts.stream_queue_limit) return close_now();
    outbox_.push_back(raw);
    outbox_ready_.cancel();
}

asio::awaitable<bool> ws_session::resolve_owners() {
    while (!unresolved_.empty() && !closed_) {
        auto id = unresolved_.begin()->first;
        auto owner = co_await s_.broker.owner(id);
        if (!owner && owner.error() != errc::job_not_found) co_return false;  // Redis away: on the next ring
        bool mine = owner && *owner == tenant_;
        if (owned_.size() >= 10'000) owned_.clear();  // bounded: forgotten ids are looked up again
        owned_[id] = mine;
        auto node = unresolved_.extract(id);  // updates that came in while we looked
        if (mine && !node.empty())
            for (const auto& raw : node.mapped()) forward_update(raw);
    }
    co_return true;
}

void ws_session::send(json::object msg) {
    if (closed_) return;
    if (outbox_.size() >= s_.opts.stream_queue_limit) return close_now();
    outbox_.push_back(json::serialize(msg));
    outbox_ready_.cancel();
}

void ws_session::send_error(const json::value& id, const api_error& e) {
    json::object err;
    auto m = map_error(e.ec);
    err["code"] = m.code;
    err["message"] = e.message.empty() ? e.ec.message() : e.message;
    json::object msg;
    msg["id"] = id;
    msg["type"] = "error";
    msg["error"] = std::move(err);
    if (e.ec == errc::rate_limited) msg["retry_after_ms"] = e.retry_after.count();
    send(std::move(msg));
}

void ws_session::close_now() {
    if (closed_) return;
    closed_ = true;
    outbox_.clear();
    boost::system::error_code ec;
    boost::beast::get_lowest_layer(*ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    boost::beast::get_lowest_layer(*ws_).socket().close(ec);
    outbox_ready_.cancel();
    doorbell_.cancel();
}

void ws_session::stop() {
    stopping_ = true;
    outbox_ready_.cancel();
    doorbell_.cancel();
}

asio::awaitable<void> ws_session::writer() {
    while (!closed_) {
        if (outbox_.empty()) {
            if (stopping_) {
                // Queue drained: say goodbye. The pending read then ends with `closed`.
                websocket::close_reason why{websocket::close_code::going_away};
                // A peer that never answers the close frame must not hold up shutdown long.
                websocket::stream_base::timeout t{};
                t.handshake_timeout = std::min<std::chrono::steady_clock::duration>(s_.opts.read_timeout,
                                                                                    std::chrono::seconds{1});
                t.idle_timeout = s_.opts.idle_timeout;
                t.keep_alive_pings = true;
                ws_->set_option(t);
                co_await ws_->async_close(why, use_tuple);
                close_now();  // ends the reader's pending read whatever the peer does
                co_return;
            }
            outbox_ready_.expires_at(asio::steady_timer::time_point::max());
            co_await outbox_ready_.async_wait(use_tuple);
            continue;
        }
        std::string msg = std::move(outbox_.front());
        outbox_.pop_front();
        ws_->text(true);
        auto [ec, n] = co_await ws_->async_write(asio::buffer(msg), use_tuple);
        if (ec) {
            close_now();
            co_return;
        }
    }
}

asio::awaitable<void> ws_session::pump() {
    // Never the first loop to end on its own (that would cancel the writer's close
    // handshake): it waits until the reader or the writer finishes.
    while (!closed_) {
        bool lookups_failed = false;
        while ((!dirty_.empty() || (!unresolved_.empty() && !lookups_failed)) && !closed_ && !stopping_) {
            if (!unresolved_.empty() && !lookups_failed) lookups_failed = !co_await resolve_owners();
            if (dirty_.empty()) continue;
            auto id = *dirty_.begin();
            dirty_.erase(dirty_.begin());
            co_await drain(id);
        }
        if (stopping_)
            doorbell_.expires_at(asio::steady_timer::time_point::max());
        else
            doorbell_.expires_after(s_.opts.sse_ping_interval);
        auto [ec] = co_await doorbell_.async_wait(use_tuple);
        if (!ec)  // a whole interval without a doorbell: re-read everything (missed pub/sub)
            for (const auto& [id, sub] : subs_) dirty_.insert(id);
    }
}

// Sends one event of a subscription; true when it ended the subscription
// (a terminal event).
bool ws_session::forward(std::map<std::string, subscription>::iterator it, const job_event& e) {
    json::object msg;
    msg["id"] = it->second.request_id;
    msg["type"] = e.type == "progress" ? "job_progress" : "job_status";
    msg["job_id"] = it->first;
    msg["event_id"] = e.id;
    boost::system::error_code ec;
    auto data = json::parse(e.data, ec);
    if (!ec && data.is_object())
        for (auto& [k, v] : data.get_object())
            if (!msg.contains(k)) msg[k] = v;
    it->second.last_id = e.id;
    send(std::move(msg));
    if (!is_terminal_event(e)) return false;
    subs_.erase(it);
    return true;
}

asio::awaitable<void> ws_session::drain(std::string job_id) {
    bool first = true;
    for (;;) {
        auto it = subs_.find(job_id);
        if (it == subs_.end() || closed_) co_return;
        auto evs = co_await s_.broker.events(job_id, it->second.last_id, 100);
        it = subs_.find(job_id);  // the reader may have unsubscribed meanwhile
        if (!evs || it == subs_.end()) co_return;
        if (first && evs->empty()) {
            // Nothing after the subscriber's last event id. A finished job: the
            // subscriber saw its end (ends quietly) or its id is past the end (gets
            // the terminal event). Either way the subscription ends.
            auto fin = co_await final_event(s_, job_id);
            it = subs_.find(job_id);
            if (!fin || it == subs_.end()) co_return;
            if (fin->id == it->second.last_id)
                subs_.erase(it);
            else
                forward(it, *fin);
            co_return;
        }
        first = false;
        for (const auto& e : *evs)
            if (forward(it, e)) co_return;
        if (evs->size() < 100) co_return;
    }
}

asio::awaitable<void> ws_session::submit_job(json::value id, json::object msg) {
    if (s_.limiter.enabled()) {
        auto d = co_await s_.limiter.check(client_key_, s_.now());
        if (!d.allowed) {
            send_error(id, api_error{errc::rate_limited, "", d.retry_after});
            co_return;
        }
    }
    auto* data = msg.if_contains("data");
    if (!data) {
        send_error(id, api_error{errc::invalid_argument, "submit_job needs a \"data\" object", {}});
        co_return;
    }
    submit_defaults d;
    d.queue = s_.opts.default_queue;
    d.max_payload_bytes = s_.opts.max_payload_bytes;
    d.ttl = s_.opts.result_ttl;
    auto spec = parse_submit(*data, d, s_.now());
    if (!spec) {
        send_error(id, spec.error());
        co_return;
    }
    if (tenant_scoped()) {
        spec->tenant = tenant_;
        if (!spec->unique_key.empty()) spec->unique_key = tenant_ + ":" + spec->unique_key;
    }
    auto r = co_await s_.broker.submit(std::move(*spec), s_.now());
    if (!r) {
        send_error(id, api_error{r.error(), "", {}});
        co_return;
    }
    json::object reply;
    reply["id"] = id;
    reply["type"] = "job_submitted";
    reply["job_id"] = r->id;
    reply["status"] = to_string(r->status);
    reply["created_at"] = time_or_null(r->created_at);
    reply["duplicate"] = r->duplicate;
    send(std::move(reply));
}

asio::awaitable<void> ws_session::subscribe_progress(json::value id, json::object msg) {
    auto* jid = msg.if_contains("job_id");
    if (!jid || !jid->is_string()) {
        send_error(id, api_error{errc::invalid_argument, "job_id must be a string", {}});
        co_return;
    }
    std::string job_id{jid->get_string()};
    std::string after = "0";
    if (auto* a = msg.if_contains("last_event_id"); a && !a->is_null()) {
        if (!a->is_string() || !is_valid_event_id(a->get_string())) {
            send_error(id, api_error{errc::invalid_argument,
                                     "last_event_id must be an event id this server sent (like \"3-1\"), or \"0\"",
                                     {}});
            co_return;
        }
        if (!a->get_string().empty()) after = a->get_string();
    }
    bool known = is_valid_job_id(job_id);
    if (known) {
        auto rec = co_await s_.broker.get(job_id);
        if (!rec) {
            send_error(id, api_error{rec.error(), "", {}});
            co_return;
        }
        known = !tenant_scoped() || rec->tenant == tenant_;
    }
    if (!known) {
        send_error(id, api_error{errc::job_not_found, "job " + job_id + " not found", {}});
        co_return;
    }
    auto& sub = subs_[job_id];
    sub.request_id = id;
    sub.last_id = after;
    if (!sub.reg) sub.reg = s_.hub.watch_job(job_id, this);
    json::object ack;
    ack["id"] = id;
    ack["type"] = "subscribed";
    ack["job_id"] = job_id;
    send(std::move(ack));
    dirty_.insert(job_id);  // replay what happened so far
    doorbell_.cancel();
}

asio::awaitable<void> ws_session::handle(std::string text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) {
        send_error(nullptr,
                   api_error{errc::invalid_argument,
                             ec ? "malformed JSON: " + ec.message() : "a message must be a JSON object",
                             {}});
        co_return;
    }
    auto& msg = v.get_object();
    json::value id = nullptr;
    if (auto* i = msg.if_contains("id")) id = *i;
    auto* type = msg.if_contains("type");
    if (!type || !type->is_string()) {
        send_error(id, api_error{errc::invalid_argument, "type must be a string", {}});
        co_return;
    }
    std::string t{type->get_string()};
    auto ack = [&](const char* reply_type) {
        json::object r;
        r["id"] = id;
        r["type"] = reply_type;
        return r;
    };
    if (t == "submit_job") {
        co_await submit_job(id, std::move(msg));
    } else if (t == "subscribe_progress") {
        co_await subscribe_progress(id, std::move(msg));
    } else if (t == "unsubscribe") {
        auto r = ack("unsubscribed");
        if (auto* j = msg.if_contains("job_id"); j && j->is_string()) {
            subs_.erase(std::string{j->get_string()});
            r["job_id"] = *j;
        } else {
            subs_.clear();  // no job_id: drop every subscription
            all_updates_.reset();
        }
        send(std::move(r));
    } else if (t == "subscribe_updates") {
        if (!all_updates_) all_updates_ = s_.hub.watch_all(this);
        auto r = ack("subscribed");
        r["channel"] = "job_updates";
        send(std::move(r));
    } else if (t == "unsubscribe_updates") {
        all_updates_.reset();
        unresolved_.clear();
        auto r = ack("unsubscribed");
        r["channel"] = "job_updates";
        send(std::move(r));
    } else if (t == "ping") {
        send(ack("pong"));
    } else {
        send_error(id, api_error{errc::invalid_argument, "unknown message type \"" + t + "\"", {}});
    }
}

asio::awaitable<void> ws_session::reader() {
    boost::beast::flat_buffer buf;
    while (!closed_) {
        auto [ec, n] = co_await ws_->async_read(buf, use_tuple);
        if (ec) break;
        if (!ws_->got_text()) {
            buf.consume(buf.size());
            send_error(nullptr, api_error{errc::invalid_argument, "binary messages are not supported", {}});
            continue;
        }
        std::string text = boost::beast::buffers_to_string(buf.data());
        buf.consume(buf.size());
        if (!stopping_) co_await handle(std::move(text));
    }
    closed_ = true;
    outbox_ready_.cancel();
    doorbell_.cancel();
}

asio::awaitable<void> ws_session::run(boost::beast::tcp_stream stream, request req) {
    auto self = shared_from_this();
    ws_ = std::make_unique<websocket::stream<boost::beast::tcp_stream>>(std::move(stream));
    boost::beast::get_lowest_layer(*ws_).expires_never();  // the websocket timeouts take over
    websocket::stream_base::timeout t{};
    t.handshake_timeout = s_.opts.read_timeout;
    t.idle_timeout = s_.opts.idle_timeout;
    t.keep_alive_pings = true;  // ping at half the idle timeout; a dead peer is dropped
    ws_->set_option(t);
    ws_->read_message_max(s_.opts.max_payload_bytes + 64 * 1024);
    ws_->set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(boost::beast::http::field::server, "spool"); }));
    auto [ec] = co_await ws_->async_accept(req, use_tuple);
    if (ec) co_return;
    co_await (reader() || writer() || pump());
    closed_ = true;
    subs_.clear();
    all_updates_.reset();
    boost::system::error_code ignored;
    boost::beast::get_lowest_layer(*ws_).socket().close(ignored);
}

}  // namespace spool::http
