// src/http/schedule_routes.cpp
// /api/schedules...: create or replace, list, show, delete, pause, resume, trigger.
//
// With API keys on, an admin key (tenant "*") manages every schedule; any
// other key manages only its own tenant's schedules: those it creates belong
// to its tenant (and so do the jobs they make), and another tenant's schedule
// looks exactly like an unknown one (404). Schedule names are global: a name
// another tenant holds is a 409.
#include "http/job_json.hpp"
#include "http/route.hpp"
#include "schedule/scheduler.hpp"
#include "store/schedules.hpp"

#include <spool/error.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include <fmt/format.h>

namespace spool::http {

namespace json = boost::json;
using beast_http::status;

namespace {

constexpr int shown_next_runs = 5;

route_output not_found(std::string_view name) {
    return route_output{
        error_response(status::not_found, "schedule_not_found", fmt::format("schedule {} not found", name)),
        nullptr};
}

// The caller may see and manage this schedule.
bool visible(const request_context& ctx, const schedule::definition& d) {
    return !ctx.tenant_scoped() || d.tenant == ctx.tenant;
}

asio::awaitable<json::object> schedule_json(request_context ctx, store::schedule_row row,
                                            schedule::definition d) {
    json::object o = schedule::to_object(d);
    o["name"] = row.name;
    o["tenant"] = string_or_null(d.tenant);
    o["paused"] = row.paused;
    // The next runs: the stored next fire time, then the cron's following ticks.
    json::array next;
    if (!row.paused && row.next > 0) {
        millis t = row.next;
        next.push_back(time_or_null(t));
        for (int i = 1; i < shown_next_runs; ++i) {
            auto n = d.next_after(t);
            if (!n) break;
            t = *n;
            next.push_back(time_or_null(t));
        }
    }
    o["next_run_at"] = next.empty() ? json::value{} : next.front();
    o["next_runs"] = std::move(next);
    o["runs"] = row.runs;
    o["skipped"] = row.skipped;
    if (row.last_job.empty() && row.last_outcome.empty()) {
        o["last_run"] = nullptr;
    } else {
        json::object last;
        last["outcome"] = string_or_null(row.last_outcome);
        last["tick_at"] = time_or_null(row.last_tick);
        last["job_id"] = string_or_null(row.last_job);
        last["run_at"] = time_or_null(row.last_run_at);
        json::value job_status = nullptr;
        if (!row.last_job.empty()) {
            // The job's current status (null once the job was deleted).
            auto rec = co_await ctx.s().broker.get(row.last_job);
            if (rec) job_status = to_string(rec->status);
        }
        last["status"] = std::move(job_status);
        o["last_run"] = std::move(last);
    }
    co_return o;
}

// The schedule `name` when it exists and the caller may see it.
struct loaded {
    store::schedule_row row;
    schedule::definition def;
};
asio::awaitable<result<std::optional<loaded>>> load_visible(request_context ctx, std::string name) {
    store::schedule_store st{*ctx.s().conn, ctx.s().broker};
    auto row = co_await st.load(name);
    if (!row) co_return row.error();
    if (!*row) co_return std::optional<loaded>{};
    auto def = schedule::definition_of(**row);
    if (!def) co_return errc::invalid_state;
    if (!visible(ctx, *def)) co_return std::optional<loaded>{};
    co_return std::optional<loaded>{loaded{std::move(**row), std::move(*def)}};
}

asio::awaitable<route_output> show(request_context ctx, std::string name, status st) {
    auto l = co_await load_visible(ctx, name);
    if (!l) co_return error_output(l.error());
    if (!*l) co_return not_found(name);
    auto o = co_await schedule_json(ctx, std::move((*l)->row), std::move((*l)->def));
    co_return json_output(st, o);
}

asio::awaitable<route_output> put_schedule(request_context ctx) {
    auto body = parse_json(ctx.req->body());
    if (!body) co_return error_output(body.error());
    schedule::definition_defaults defs;
    defs.queue = ctx.s().opts.default_queue;
    defs.ttl = ctx.s().opts.result_ttl;
    defs.max_payload_bytes = ctx.s().opts.max_payload_bytes;
    auto d = schedule::parse_definition(*body, defs);
    if (!d) co_return error_output(errc::invalid_argument, d.error().message);
    d->from_config = false;  // made or changed over the API: the API's from now on
    if (auto it = ctx.s().opts.queue_defaults.find(d->queue); it != ctx.s().opts.queue_defaults.end()) {
        // The queue's configured policy, where the body left it out.
        const auto& o = body->as_object();
        if (!o.contains("max_retries")) d->max_retries = it->second.max_retries;
        if (!o.contains("timeout_seconds")) d->timeout = it->second.timeout;
    }
    if (ctx.s().auth_enabled() && ctx.tenant != admin_tenant) d->tenant = ctx.tenant;
    if (ctx.tenant_scoped()) {
        // A name another tenant holds is not this tenant's to replace.
        store::schedule_store st{*ctx.s().conn, ctx.s().broker};
        auto existing = co_await st.load(d->name);
        if (!existing) co_return error_output(existing.error());
        if (*existing) {
            auto old = schedule::definition_of(**existing);
            if (old && old->tenant != ctx.tenant)
                co_return error_output(errc::invalid_state,
                                       fmt::format("schedule name {} is taken; choose another", d->name));
        }
    }
    std::string name = d->name;
    store::schedule_store st{*ctx.s().conn, ctx.s().broker};
    auto r = co_await schedule::upsert(st, std::move(*d), ctx.s().now());
    if (!r) co_return error_output(r.error());
    co_return co_await show(ctx, std::move(name), r->created ? status::created : status::ok);
}

asio::awaitable<route_output> list_schedules(request_context ctx) {
    store::schedule_store st{*ctx.s().conn, ctx.s().broker};
    auto rows = co_await st.load_all();
    if (!rows) co_return error_output(rows.error());
    json::array arr;
    for (auto& row : *rows) {
        auto d = schedule::definition_of(row);
        if (!d || !visible(ctx, *d)) continue;
        arr.push_back(co_await schedule_json(ctx, std::move(row), std::move(*d)));
    }
    json::object o;
    o["schedules"] = std::move(arr);
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> get_schedule(request_context ctx) {
    std::string name{ctx.params.get("name")};
    return show(std::move(ctx), std::move(name), status::ok);
}

asio::awaitable<route_output> delete_schedule(request_context ctx) {
    std::string name{ctx.params.get("name")};
    auto l = co_await load_visible(ctx, name);
    if (!l) co_return error_output(l.error());
    if (!*l) co_return not_found(name);
    store::schedule_store st{*ctx.s().conn, ctx.s().broker};
    auto r = co_await schedule::remove(st, name);
    if (!r) co_return error_output(r.error());
    json::object o;
    o["name"] = name;
    o["deleted"] = true;
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> set_paused(request_context ctx, bool paused) {
    std::string name{ctx.params.get("name")};
    auto l = co_await load_visible(ctx, name);
    if (!l) co_return error_output(l.error());
    if (!*l) co_return not_found(name);
    store::schedule_store st{*ctx.s().conn, ctx.s().broker};
    auto r = co_await schedule::set_paused(st, name, paused, ctx.s().now());
    if (!r) co_return error_output(r.error());
    if (!*r) co_return not_found(name);
    co_return co_await show(ctx, std::move(name), status::ok);
}

asio::awaitable<route_output> pause_schedule(request_context ctx) { return set_paused(std::move(ctx), true); }
asio::awaitable<route_output> resume_schedule(request_context ctx) {
    return set_paused(std::move(ctx), false);
}

asio::awaitable<route_output> trigger_schedule(request_context ctx) {
    std::string name{ctx.params.get("name")};
    auto l = co_await load_visible(ctx, name);
    if (!l) co_return error_output(l.error());
    if (!*l) co_return not_found(name);
    store::schedule_store st{*ctx.s().conn, ctx.s().broker};
    auto id = co_await schedule::trigger(st, name, ctx.s().now());
    if (!id) co_return error_output(id.error());
    if (!*id) co_return not_found(name);
    json::object o;
    o["name"] = name;
    o["job_id"] = **id;
    o["status"] = "queued";
    co_return json_output(status::created, o);
}

}  // namespace

void add_schedule_routes(route_table& t) {
    t.add(verb::post, "/api/schedules", put_schedule);
    t.add(verb::get, "/api/schedules", list_schedules);
    t.add(verb::get, "/api/schedules/{name}", get_schedule);
    t.add(verb::delete_, "/api/schedules/{name}", delete_schedule);
    t.add(verb::post, "/api/schedules/{name}/pause", pause_schedule);
    t.add(verb::post, "/api/schedules/{name}/resume", resume_schedule);
    t.add(verb::post, "/api/schedules/{name}/trigger", trigger_schedule);
}

}  // namespace spool::http
