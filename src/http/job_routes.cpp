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
#include <boost/json/serialize.hpp>

#include <map>

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

// POST /api/flows: {"jobs": [{"ref": "a", ...a job..., "depends_on": [refs or ids]}]}.
// Refs name jobs of the same flow; other entries must be existing job ids.
asio::awaitable<route_output> submit_flow(request_context ctx) {
    auto body = parse_json(ctx.req->body());
    if (!body) co_return error_output(body.error());
    auto bad = [](std::string m) { return error_output(errc::invalid_argument, std::move(m)); };
    const auto* jobs_v = body->is_object() ? body->get_object().if_contains("jobs") : nullptr;
    if (!jobs_v || !jobs_v->is_array() || jobs_v->get_array().empty())
        co_return bad("jobs must be a non-empty array of jobs");
    const auto& arr = jobs_v->get_array();
    if (arr.size() > 1000) co_return bad("jobs may hold at most 1000 jobs");
    submit_defaults d;
    d.queue = ctx.s().opts.default_queue;
    d.max_payload_bytes = ctx.s().opts.max_payload_bytes;
    d.ttl = ctx.s().opts.result_ttl;
    d.per_queue = &ctx.s().opts.queue_defaults;
    const std::size_t n = arr.size();
    std::vector<std::string> refs(n);
    std::map<std::string, std::size_t> by_ref;
    for (std::size_t i = 0; i < n; ++i) {
        const std::string where = "jobs[" + std::to_string(i) + "]";
        if (!arr[i].is_object()) co_return bad(where + " must be an object");
        const auto* r = arr[i].get_object().if_contains("ref");
        if (r && (!r->is_string() || r->get_string().empty() || r->get_string().size() > 128))
            co_return bad(where + ".ref must be a string of 1 to 128 characters");
        refs[i] = r ? std::string{r->get_string()} : std::to_string(i);
        if (!by_ref.emplace(refs[i], i).second) co_return bad(where + ".ref \"" + refs[i] + "\" is used twice");
    }
    // Each job's spec (existing ids left in depends_on) and its parents in the flow.
    std::vector<store::flow_job> parsed(n);
    std::vector<std::vector<std::size_t>> parents(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::string where = "jobs[" + std::to_string(i) + "]";
        json::object o = arr[i].get_object();
        o.erase("ref");
        json::array existing;
        if (auto* dep = o.if_contains("depends_on")) {
            if (!dep->is_array()) co_return bad(where + ".depends_on must be an array of refs or job ids");
            for (const auto& e : dep->get_array()) {
                if (!e.is_string()) co_return bad(where + ".depends_on must be an array of refs or job ids");
                auto it = by_ref.find(std::string{e.get_string()});
                if (it != by_ref.end()) {
                    parents[i].push_back(it->second);
                } else if (is_valid_job_id(e.get_string())) {
                    existing.push_back(e);
                } else {
                    co_return bad(where + ".depends_on: " + json::serialize(e) +
                                  " is neither a ref of this flow nor a job id");
                }
            }
            o.erase("depends_on");
            if (!existing.empty()) o["depends_on"] = existing;
        }
        json::value opf;
        if (existing.empty() && o.contains("on_parent_failure")) {
            opf = o.at("on_parent_failure");  // checked once the job has its flow parents
            o.erase("on_parent_failure");
        }
        auto spec = parse_submit(o, d, ctx.s().now());
        if (!spec) co_return error_output(spec.error().ec, where + ": " + spec.error().message);
        if (!opf.is_null()) {
            if (!opf.is_string() || (opf.get_string() != "fail" && opf.get_string() != "cancel" && opf.get_string() != "run"))
                co_return bad(where + ".on_parent_failure must be one of \"fail\", \"cancel\", \"run\"");
            if (parents[i].empty()) co_return bad(where + ".on_parent_failure needs depends_on");
            spec->on_parent_failure = std::string{opf.get_string()};
        }
        if (!spec->unique_key.empty()) co_return bad(where + ".unique_key is not supported in a flow");
        if (spec->run_at > 0) co_return bad(where + ": a flow's jobs cannot be delayed");
        apply_tenant(*spec, ctx);
        parsed[i].spec = std::move(*spec);
    }
    // Parents before children (Kahn); what is left over is a cycle.
    std::vector<std::size_t> missing(n), order;
    std::vector<std::vector<std::size_t>> children(n);
    for (std::size_t i = 0; i < n; ++i) {
        missing[i] = parents[i].size();
        for (auto p : parents[i]) children[p].push_back(i);
    }
    for (std::size_t i = 0; i < n; ++i)
        if (missing[i] == 0) order.push_back(i);
    for (std::size_t k = 0; k < order.size(); ++k)
        for (auto c : children[order[k]])
            if (--missing[c] == 0) order.push_back(c);
    if (order.size() < n) {
        std::string in_cycle;
        for (std::size_t i = 0; i < n; ++i)
            if (missing[i] > 0) in_cycle += (in_cycle.empty() ? "" : ", ") + refs[i];
        co_return bad("jobs: the depends_on references form a cycle (through " + in_cycle + ")");
    }
    std::vector<std::size_t> position(n);
    for (std::size_t k = 0; k < n; ++k) position[order[k]] = k;
    std::vector<store::flow_job> flow(n);
    for (std::size_t k = 0; k < n; ++k) {
        flow[k] = std::move(parsed[order[k]]);
        for (auto p : parents[order[k]]) flow[k].after.push_back(position[p]);
    }
    auto r = co_await ctx.s().broker.submit_flow(std::move(flow), ctx.s().now());
    if (!r) {
        if (r.error() == errc::unknown_dependency)
            co_return error_output(r.error(), "jobs: depends_on names a job that does not exist");
        co_return error_output(r.error());
    }
    json::array out;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& sr = r->jobs[position[i]];
        json::object j;
        j["ref"] = refs[i];
        j["job_id"] = sr.id;
        j["status"] = to_string(sr.status);
        out.push_back(std::move(j));
    }
    json::object o;
    o["flow_id"] = r->flow_id;
    o["jobs"] = std::move(out);
    o["message"] = "Flow submitted successfully";
    co_return json_output(status::created, o);
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
    t.add(verb::post, "/api/flows", submit_flow);
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
