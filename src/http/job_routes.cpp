// src/http/job_routes.cpp
// /api/jobs...: submit, list, status, result, events (SSE), cancel, delete, retry.
#include "http/job_json.hpp"
#include "http/route.hpp"
#include "http/sse_format.hpp"
#include "http/sse_stream.hpp"
#include "util/ids.hpp"

#include <spool/error.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace spool::http {

namespace json = boost::json;
using beast_http::status;

namespace {

// Applies the caller's tenant to a spec: with auth on (and not an admin) the
// job belongs to the key's tenant, and unique keys are kept apart per tenant.
void apply_tenant(job_spec& spec, const request_context& ctx) {
    if (!ctx.s().auth_enabled()) return;
    if (ctx.tenant == admin_tenant) return;  // an admin may name the tenant in the body
    spec.tenant = ctx.tenant;
    if (!spec.unique_key.empty()) spec.unique_key = ctx.tenant + ":" + spec.unique_key;
}

asio::awaitable<route_output> submit_job(request_context ctx) {
    auto body = parse_json(ctx.req->body());
    if (!body) co_return error_output(body.error());
    submit_defaults d;
    d.queue = ctx.s().opts.default_queue;
    d.max_payload_bytes = ctx.s().opts.max_payload_bytes;
    d.ttl = ctx.s().opts.result_ttl;
    d.per_queue = &ctx.s().opts.queue_defaults;
    auto spec = parse_submit(*body, d, ctx.s().now());
    if (!spec) co_return error_output(spec.error());
    apply_tenant(*spec, ctx);
    auto r = co_await ctx.s().broker.submit(std::move(*spec), ctx.s().now());
    if (!r) co_return error_output(r.error());
    json::object o;
    o["job_id"] = r->id;
    o["status"] = to_string(r->status);
    o["created_at"] = time_or_null(r->created_at);
    o["message"] = r->duplicate ? "A live job with this unique_key exists" : "Job submitted successfully";
    co_return json_output(r->duplicate ? status::ok : status::created, o);
}

asio::awaitable<route_output> list_jobs(request_context ctx) {
    auto q = parse_list_query(ctx.query);
    if (!q) co_return error_output(q.error());
    if (ctx.tenant_scoped()) q->tenant = ctx.tenant;
    auto page = co_await ctx.s().broker.list(std::move(*q));
    if (!page) co_return error_output(page.error());
    json::array jobs;
    for (const auto& j : page->jobs) jobs.push_back(job_status_json(j));
    json::object o;
    o["jobs"] = std::move(jobs);
    o["next_cursor"] = string_or_null(page->next_cursor);
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> get_job(request_context ctx) {
    std::string id{ctx.params.get("id")};
    auto rec = co_await load_visible_job(ctx, std::move(id));
    if (!rec) co_return error_output(rec.error());
    co_return json_output(status::ok, job_status_json(*rec));
}

asio::awaitable<route_output> get_result(request_context ctx) {
    return result_output(ctx, std::string{ctx.params.get("id")});
}

asio::awaitable<route_output> job_events(request_context ctx) {
    std::string id{ctx.params.get("id")};
    auto rec = co_await load_visible_job(ctx, id);
    if (!rec) co_return error_output(rec.error());
    std::string after = "0";
    auto last = ctx.req->find("Last-Event-ID");
    if (last != ctx.req->end() && !last->value().empty()) after = std::string{last->value()};
    // Also as a query parameter, for clients that cannot set headers.
    for (const auto& [k, v] : ctx.query)
        if ((k == "last_event_id" || k == "after") && !v.empty()) after = v;
    if (!is_valid_event_id(after))
        co_return error_output(
            errc::invalid_argument,
            "Last-Event-ID must be an event id this stream sent (like 3-1), or 0");
    route_output out;
    out.stream = std::make_shared<sse_stream>(ctx.s(), id, after, is_terminal(rec->status));
    co_return out;
}

asio::awaitable<route_output> delete_job(request_context ctx) {
    std::string id{ctx.params.get("id")};
    auto rec = co_await load_visible_job(ctx, id);
    if (!rec) co_return error_output(rec.error());
    auto r = co_await ctx.s().broker.remove(id, ctx.s().now());
    if (!r) co_return error_output(r.error());
    json::object o;
    o["job_id"] = id;
    o["message"] = "Job " + id + " cancelled/deleted";
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> cancel_job(request_context ctx) {
    std::string id{ctx.params.get("id")};
    auto rec = co_await load_visible_job(ctx, id);
    if (!rec) co_return error_output(rec.error());
    auto r = co_await ctx.s().broker.cancel(id, ctx.s().now());
    if (!r) co_return error_output(r.error());
    json::object o;
    o["job_id"] = id;
    o["status"] = to_string(*r);
    o["message"] =
        *r == job_status::cancelled ? "Job cancelled" : "Cancel requested; the worker is stopping the job";
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> retry_job(request_context ctx) {
    std::string id{ctx.params.get("id")};
    auto rec = co_await load_visible_job(ctx, id);
    if (!rec) co_return error_output(rec.error());
    // Checked here too, so the answer does not depend on how the broker words a refusal.
    if (rec->status != job_status::failed && rec->status != job_status::cancelled)
        co_return error_output(errc::invalid_state, "only failed or cancelled jobs can be retried; job " +
                                                        id + " is " + std::string{to_string(rec->status)});
    auto r = co_await ctx.s().broker.retry(id, ctx.s().now());
    if (!r) {
        if (r.error() == errc::invalid_state)
            co_return error_output(errc::invalid_state, "only failed or cancelled jobs can be retried; job " +
                                                            id + " is " +
                                                            std::string{to_string(rec->status)});
        co_return error_output(r.error());
    }
    json::object o;
    o["job_id"] = id;
    o["status"] = "queued";
    o["message"] = "Job requeued";
    co_return json_output(status::ok, o);
}

}  // namespace

void add_job_routes(route_table& t) {
    t.add(verb::post, "/api/jobs", submit_job);
    t.add(verb::get, "/api/jobs", list_jobs);
    t.add(verb::get, "/api/jobs/{id}", get_job);
    t.add(verb::delete_, "/api/jobs/{id}", delete_job);
    t.add(verb::get, "/api/jobs/{id}/result", get_result);
    t.add(verb::get, "/api/jobs/{id}/events", job_events);
    t.add(verb::get, "/api/jobs/{id}/progress", job_events);
    t.add(verb::post, "/api/jobs/{id}/cancel", cancel_job);
    t.add(verb::post, "/api/jobs/{id}/retry", retry_job);
}

}  // namespace spool::http
