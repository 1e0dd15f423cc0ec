// src/http/compat_routes.cpp
// The original async solver API (/solve/async...), shape for shape, on the
// compat queue ("solve" unless configured otherwise).
#include "http/job_json.hpp"
#include "http/route.hpp"
#include "util/ids.hpp"

#include <spool/error.hpp>

#include <boost/json/object.hpp>

namespace spool::http {

namespace json = boost::json;
using beast_http::status;

namespace {

asio::awaitable<route_output> compat_submit(request_context ctx) {
    auto body = parse_json(ctx.req->body());
    if (!body) co_return error_output(body.error());
    submit_defaults d;
    d.queue = ctx.s().opts.compat_queue;
    d.max_payload_bytes = ctx.s().opts.max_payload_bytes;
    d.ttl = ctx.s().opts.result_ttl;
    d.per_queue = &ctx.s().opts.queue_defaults;
    d.require_payload = true;
    auto spec = parse_submit(*body, d, ctx.s().now());
    if (!spec) co_return error_output(spec.error());
    if (ctx.tenant_scoped()) {
        spec->tenant = ctx.tenant;
        if (!spec->unique_key.empty()) spec->unique_key = ctx.tenant + ":" + spec->unique_key;
    }
    auto r = co_await ctx.s().broker.submit(std::move(*spec), ctx.s().now());
    if (!r) co_return error_output(r.error());
    json::object o;
    o["job_id"] = r->id;
    o["status"] = to_string(r->status);
    o["created_at"] = time_or_null(r->created_at);
    o["message"] = "Job submitted successfully";
    co_return json_output(r->duplicate ? status::ok : status::created, o);
}

asio::awaitable<route_output> compat_stats(request_context ctx) {
    auto& s = ctx.s();
    if (ctx.tenant_scoped())
        co_return error_output(errc::forbidden,
                               "queue stats count every tenant's jobs: they need an admin API key");
    // Shape of the original: it answers even when Redis is down (redis_connected: false).
    std::vector<store::queue_info> mine;
    bool connected = s.conn->is_connected();
    std::int64_t workers = s.opts.workers;
    if (connected) {
        auto qs = co_await s.broker.queues();
        if (qs) {
            for (auto& q : *qs)
                if (q.name == s.opts.compat_queue) mine.push_back(std::move(q));
        } else {
            connected = false;
        }
        if (workers < 0) {
            auto ws = co_await s.broker.workers();
            workers = ws ? static_cast<std::int64_t>(ws->size()) : 0;
        }
    }
    if (workers < 0) workers = 0;
    std::int64_t total = 0, held = 0, queued = 0, completed = 0;
    for (const auto& q : mine) {
        total += q.submitted_total;
        held += q.queued + q.scheduled + q.active + q.completed + q.failed + q.cancelled;
        queued += q.queued;
        completed += q.completed;
    }
    json::object o;
    o["total_jobs"] = total;
    o["active_jobs"] = held;
    o["queue_length"] = queued;
    o["results_cached"] = completed;
    o["status_breakdown"] = status_breakdown(mine, true);
    o["ttl_seconds"] = s.opts.result_ttl.count();
    o["workers"] = workers;
    o["redis_connected"] = connected;
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> compat_status(request_context ctx) {
    std::string id{ctx.params.get("id")};
    auto rec = co_await load_visible_job(ctx, std::move(id));
    if (!rec) co_return error_output(rec.error());
    co_return json_output(status::ok, compat_status_json(*rec));
}

asio::awaitable<route_output> compat_result(request_context ctx) {
    return result_output(ctx, std::string{ctx.params.get("id")});
}

asio::awaitable<route_output> compat_delete(request_context ctx) {
    std::string id{ctx.params.get("id")};
    auto rec = co_await load_visible_job(ctx, id);
    if (!rec) co_return error_output(rec.error());
    auto r = co_await ctx.s().broker.remove(id, ctx.s().now());
    if (!r) co_return error_output(r.error());
    json::object o;
    o["message"] = "Job " + id + " cancelled/deleted";
    co_return json_output(status::ok, o);
}

}  // namespace

void add_compat_routes(route_table& t) {
    t.add(verb::post, "/solve/async", compat_submit);
    t.add(verb::get, "/solve/async/stats", compat_stats);
    t.add(verb::get, "/solve/async/{id}", compat_status);
    t.add(verb::get, "/solve/async/{id}/result", compat_result);
    t.add(verb::delete_, "/solve/async/{id}", compat_delete);
}

}  // namespace spool::http
