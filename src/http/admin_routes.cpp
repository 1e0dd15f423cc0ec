// src/http/admin_routes.cpp
// /api/queues, /api/workers, /api/stats, /health, /metrics and the /ws entry.
#include "http/job_json.hpp"
#include "http/route.hpp"
#include "util/time_format.hpp"

#include <spool/error.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <charconv>
#include <optional>

#include <fmt/format.h>

namespace spool::http {

namespace json = boost::json;
using beast_http::status;

namespace {

// Queue depths, throughput and totals count every tenant's jobs: with API keys
// on they are an operator's view (an admin key, tenant "*").
std::optional<route_output> operator_only(const request_context& ctx, std::string_view what) {
    if (!ctx.tenant_scoped()) return std::nullopt;
    return error_output(errc::forbidden,
                        fmt::format("{} count every tenant's jobs: they need an admin API key "
                                    "(one bound to tenant \"*\"); a tenant lists its own jobs "
                                    "with GET /api/jobs?status=",
                                    what));
}

asio::awaitable<route_output> list_queues(request_context ctx) {
    if (auto no = operator_only(ctx, "queue depths")) co_return std::move(*no);
    auto qs = co_await ctx.s().broker.queues();
    if (!qs) co_return error_output(qs.error());
    json::array arr;
    for (const auto& q : *qs) arr.push_back(queue_json(q));
    json::object o;
    o["queues"] = std::move(arr);
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> set_paused(request_context ctx, bool paused) {
    if (ctx.tenant_scoped())
        co_return error_output(errc::forbidden, "only an admin API key may pause or resume queues");
    std::string q{ctx.params.get("queue")};
    if (!is_valid_queue_name(q))
        co_return error_output(errc::invalid_argument, "queue is not a valid queue name");
    // Only a queue that exists: configured here, or known to Redis (it has had jobs).
    if (!ctx.s().opts.queue_defaults.contains(q) && q != ctx.s().opts.default_queue &&
        q != ctx.s().opts.compat_queue) {
        auto known = co_await ctx.s().broker.queue_exists(q);
        if (!known) co_return error_output(known.error());
        if (!*known) co_return error_output(errc::queue_not_found, "queue " + q + " not found");
    }
    result<void> r;
    if (paused)
        r = co_await ctx.s().broker.pause(q);
    else
        r = co_await ctx.s().broker.resume(q);
    if (!r) co_return error_output(r.error());
    json::object o;
    o["queue"] = q;
    o["paused"] = paused;
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> pause_queue(request_context ctx) { return set_paused(std::move(ctx), true); }
asio::awaitable<route_output> resume_queue(request_context ctx) { return set_paused(std::move(ctx), false); }

asio::awaitable<route_output> list_workers(request_context ctx) {
    auto ws = co_await ctx.s().broker.workers();
    if (!ws) co_return error_output(ws.error());
    if (ctx.tenant_scoped()) {
        // Workers are shared; the jobs they run are not: a tenant sees only its own.
        for (auto& w : *ws) {
            auto owners = co_await ctx.s().broker.owners(w.running);
            if (!owners) co_return error_output(owners.error());
            std::vector<std::string> mine;
            for (std::size_t i = 0; i < w.running.size(); ++i)
                if ((*owners)[i] == ctx.tenant) mine.push_back(std::move(w.running[i]));
            w.running = std::move(mine);
        }
    }
    json::array arr;
    for (const auto& w : *ws) arr.push_back(worker_json(w));
    json::object o;
    o["workers"] = std::move(arr);
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> stats(request_context ctx) {
    if (auto no = operator_only(ctx, "stats")) co_return std::move(*no);
    auto qs = co_await ctx.s().broker.queues();
    if (!qs) co_return error_output(qs.error());
    auto ws = co_await ctx.s().broker.workers();
    if (!ws) co_return error_output(ws.error());
    std::int64_t jobs = 0, submitted = 0, completed = 0, failed = 0, retried = 0;
    for (const auto& q : *qs) {
        jobs += q.queued + q.scheduled + q.active + q.completed + q.failed + q.cancelled;
        submitted += q.submitted_total;
        completed += q.completed_total;
        failed += q.failed_total;
        retried += q.retried_total;
    }
    json::object totals;
    totals["submitted"] = submitted;
    totals["completed"] = completed;
    totals["failed"] = failed;
    totals["retried"] = retried;
    json::object o;
    o["total_jobs"] = jobs;
    o["queues"] = qs->size();
    o["workers"] = ws->size();
    o["status_breakdown"] = status_breakdown(*qs, false);
    o["totals"] = std::move(totals);
    o["redis_connected"] = ctx.s().conn->is_connected();
    o["timestamp"] = format_iso8601(ctx.s().now());
    co_return json_output(status::ok, o);
}

// One "field:value" line of INFO's text.
std::string_view info_field(std::string_view info, std::string_view name) {
    std::size_t pos = 0;
    while (pos < info.size()) {
        auto end = info.find('\n', pos);
        auto line = info.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() > name.size() && line.substr(0, name.size()) == name && line[name.size()] == ':')
            return line.substr(name.size() + 1);
        if (end == std::string_view::npos) break;
        pos = end + 1;
    }
    return {};
}

json::value info_number(std::string_view info, std::string_view name) {
    auto v = info_field(info, name);
    long long n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || v.empty()) return nullptr;
    return n;
}

asio::awaitable<route_output> health(request_context ctx) {
    auto& s = ctx.s();
    json::object rinfo;
    json::object o;
    o["timestamp"] = format_iso8601(s.now());
    auto unhealthy = [&](std::string why) {
        rinfo["connected"] = false;
        rinfo["error"] = std::move(why);
        o["status"] = "unhealthy";
        o["redis"] = std::move(rinfo);
        return json_output(status::service_unavailable, o);
    };
    // Answer fast when the link is known to be down; otherwise bound PING + INFO.
    if (!s.conn->is_connected()) co_return unhealthy("not connected to Redis");
    auto t0 = std::chrono::steady_clock::now();
    redis::command ping{"PING"};
    auto pong = co_await s.conn->exec(std::move(ping), s.opts.health_timeout);
    auto latency = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!pong) co_return unhealthy(pong.error().message());
    if (pong->is_error()) co_return unhealthy(pong->str);
    auto left = s.opts.health_timeout -
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    if (left < std::chrono::milliseconds{50}) left = std::chrono::milliseconds{50};
    redis::command info_cmd{"INFO"};
    auto info = co_await s.conn->exec(std::move(info_cmd), left);
    rinfo["connected"] = true;
    rinfo["latency_ms"] = static_cast<double>(static_cast<long long>(latency * 1000)) / 1000;
    if (info && info->is_string()) {
        std::string_view text = info->str;
        rinfo["version"] = info_field(text, "redis_version");
        rinfo["used_memory"] = info_number(text, "used_memory");
        rinfo["connected_clients"] = info_number(text, "connected_clients");
        rinfo["uptime_seconds"] = info_number(text, "uptime_in_seconds");
    } else {
        rinfo["version"] = nullptr;
        rinfo["used_memory"] = nullptr;
        rinfo["connected_clients"] = nullptr;
        rinfo["uptime_seconds"] = nullptr;
    }
    o["status"] = "ok";
    o["redis"] = std::move(rinfo);
    co_return json_output(status::ok, o);
}

// Compares without an early exit, so the time taken does not tell how much of a key matched.
bool same_secret(std::string_view a, std::string_view b) {
    if (a.size() != b.size() || b.empty()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

asio::awaitable<route_output> metrics_text(request_context ctx) {
    auto& s = ctx.s();
    if (!s.opts.metrics_key.empty()) {
        // An operator endpoint: the metrics key, or an admin API key.
        auto token = bearer_token(*ctx.req);
        auto admin = s.opts.api_keys.find(token);
        bool ok = same_secret(token, s.opts.metrics_key) ||
                  (!token.empty() && admin != s.opts.api_keys.end() && admin->second == admin_tenant);
        if (!ok) {
            auto out =
                error_output(errc::unauthorized,
                             token.empty() ? "/metrics needs the metrics key (Authorization: Bearer <key>)"
                                           : "unknown metrics key");
            out.res.set(beast_http::field::www_authenticate, "Bearer");
            co_return out;
        }
    }
    metrics_inputs in;
    in.open_connections = s.sessions.size();
    if (s.conn->is_connected()) {
        auto qs = co_await s.broker.queues();
        if (qs) {
            in.queues = std::move(*qs);
            in.redis_up = true;
        }
        auto ws = co_await s.broker.workers();
        if (ws) in.workers = ws->size();
    }
    response res{status::ok, 11};
    res.set(beast_http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = s.stats.render(in);
    co_return route_output{std::move(res), nullptr};
}

// Never called: the session upgrades /ws before routing to a function.
asio::awaitable<route_output> websocket_entry(request_context) {
    co_return error_output(errc::invalid_argument, "WebSocket upgrade required");
}

}  // namespace

void add_admin_routes(route_table& t) {
    t.add(verb::get, "/api/queues", list_queues);
    t.add(verb::post, "/api/queues/{queue}/pause", pause_queue);
    t.add(verb::post, "/api/queues/{queue}/resume", resume_queue);
    t.add(verb::get, "/api/workers", list_workers);
    t.add(verb::get, "/api/stats", stats);
    t.add(verb::get, "/health", health, route_access::open);
    t.add(verb::get, "/metrics", metrics_text, route_access::open);
    t.add(verb::get, "/ws", websocket_entry, route_access::websocket);
}

}  // namespace spool::http
