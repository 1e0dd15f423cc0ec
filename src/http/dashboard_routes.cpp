// src/http/dashboard_routes.cpp
// The routes the web dashboard needs beyond the job and admin API (docs/http-api.md,
// "Dashboard"): who the caller is, per-queue throughput history and latency
// percentiles, job search, a job's payload, and the bulk actions (retry every dead
// job, purge completed jobs), which are scripts atomic per job.
#include "http/job_json.hpp"
#include "http/route.hpp"
#include "util/time_format.hpp"

#include <spool/error.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>

namespace spool::http {

namespace json = boost::json;
using beast_http::status;

namespace {

std::optional<std::string_view> query_value(const request_context& ctx, std::string_view name) {
    for (const auto& [k, v] : ctx.query)
        if (k == name) return std::string_view{v};
    return std::nullopt;
}

// An integer query parameter in [lo, hi]; `fallback` when absent; an api_error otherwise.
api_result<long long> int_param(const request_context& ctx, std::string_view name, long long lo, long long hi,
                                long long fallback) {
    auto v = query_value(ctx, name);
    if (!v) return fallback;
    long long n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || p != v->data() + v->size() || n < lo || n > hi)
        return api_error{
            errc::invalid_argument, fmt::format("{} must be an integer from {} to {}", name, lo, hi), {}};
    return n;
}

// The {queue} path parameter when it names a queue Redis knows; 400 / 404 otherwise.
asio::awaitable<api_result<std::string>> known_queue(request_context ctx) {
    std::string q{ctx.params.get("queue")};
    if (!is_valid_queue_name(q))
        co_return api_error{
            errc::invalid_argument, "queue must be 1 to 128 characters of A-Z a-z 0-9 _ . : -", {}};
    auto known = co_await ctx.s().broker.queue_exists(q);
    if (!known) co_return api_error{known.error(), "", {}};
    if (!*known) co_return api_error{errc::queue_not_found, "queue " + q + " not found", {}};
    co_return q;
}

// The tenant a bulk action is limited to: the caller's when it is tenant-scoped.
std::string scope_of(const request_context& ctx) { return ctx.tenant_scoped() ? ctx.tenant : std::string{}; }

// An open route (no 401): the dashboard asks it first, with the key it has (if
// any), to learn whether it must ask for one and what that key may see.
asio::awaitable<route_output> session_info(request_context ctx) {
    auto& s = ctx.s();
    json::object o;
    o["auth"] = s.auth_enabled();
    if (s.auth_enabled()) {
        auto key = bearer_token(*ctx.req);
        auto it = key.empty() ? s.opts.api_keys.end() : s.opts.api_keys.find(key);
        o["authenticated"] = it != s.opts.api_keys.end();
        if (it != s.opts.api_keys.end()) {
            o["tenant"] = it->second;
            o["admin"] = it->second == admin_tenant;
        } else {
            o["tenant"] = nullptr;
            o["admin"] = false;
        }
    } else {
        o["authenticated"] = true;
        o["tenant"] = nullptr;
        o["admin"] = true;
    }
    o["history_bucket_seconds"] = static_cast<double>(ctx.s().opts.history_bucket.count()) / 1000.0;
    co_return json_output(status::ok, o);
}

json::object percentiles(std::vector<millis> v) {
    json::object o;
    if (v.empty()) {
        o["p50"] = nullptr;
        o["p90"] = nullptr;
        o["p99"] = nullptr;
        o["max"] = nullptr;
        return o;
    }
    std::sort(v.begin(), v.end());
    // Nearest rank: the smallest value with at least p% of the sample at or below it.
    auto rank = [&](double p) {
        auto idx =
            static_cast<std::size_t>(std::max(1.0, std::ceil(p / 100.0 * static_cast<double>(v.size()))));
        return v[std::min(idx, v.size()) - 1];
    };
    o["p50"] = rank(50);
    o["p90"] = rank(90);
    o["p99"] = rank(99);
    o["max"] = v.back();
    return o;
}

asio::awaitable<route_output> queue_history(request_context ctx) {
    if (ctx.tenant_scoped())
        co_return error_output(errc::forbidden,
                               "queue history counts every tenant's jobs: it needs an admin API key "
                               "(one bound to tenant \"*\")");
    auto minutes = int_param(ctx, "minutes", 1, 24 * 60, 60);
    if (!minutes) co_return error_output(minutes.error());
    auto sample = int_param(ctx, "sample", 0, 1000, 200);
    if (!sample) co_return error_output(sample.error());
    auto q = co_await known_queue(ctx);
    if (!q) co_return error_output(q.error());
    const millis now = ctx.s().now();
    const millis since = now - *minutes * 60'000;
    auto points = co_await ctx.s().broker.history(*q, since, now);
    if (!points) co_return error_output(points.error());
    auto timings = co_await ctx.s().broker.recent_timings(*q, static_cast<std::size_t>(*sample));
    if (!timings) co_return error_output(timings.error());

    // Consecutive snapshots of cumulative counters: their differences are the jobs
    // of each bucket (the last one runs up to now). A counter that went down (its
    // queue was deleted and made again) counts as 0.
    json::array buckets;
    std::int64_t sum_submitted = 0, sum_completed = 0, sum_failed = 0, sum_retried = 0;
    auto delta = [](std::int64_t a, std::int64_t b) { return b > a ? b - a : std::int64_t{0}; };
    for (std::size_t i = 0; i + 1 < points->size(); ++i) {
        const auto& a = (*points)[i];
        const auto& b = (*points)[i + 1];
        json::object p;
        p["start"] = format_iso8601(a.ts);
        p["end"] = format_iso8601(b.ts);
        p["submitted"] = delta(a.submitted, b.submitted);
        p["completed"] = delta(a.completed, b.completed);
        p["failed"] = delta(a.failed, b.failed);
        p["retried"] = delta(a.retried, b.retried);
        sum_submitted += delta(a.submitted, b.submitted);
        sum_completed += delta(a.completed, b.completed);
        sum_failed += delta(a.failed, b.failed);
        sum_retried += delta(a.retried, b.retried);
        buckets.push_back(std::move(p));
    }
    json::object totals;
    totals["submitted"] = sum_submitted;
    totals["completed"] = sum_completed;
    totals["failed"] = sum_failed;
    totals["retried"] = sum_retried;
    std::vector<millis> waits, runs;
    for (const auto& t : *timings) {
        waits.push_back(t.wait);
        runs.push_back(t.run);
    }
    json::object latency;
    latency["sample"] = timings->size();
    latency["wait_ms"] = percentiles(std::move(waits));
    latency["run_ms"] = percentiles(std::move(runs));
    json::object o;
    o["queue"] = *q;
    o["bucket_seconds"] = static_cast<double>(ctx.s().opts.history_bucket.count()) / 1000.0;
    o["from"] = format_iso8601(since);
    o["to"] = format_iso8601(now);
    o["buckets"] = std::move(buckets);
    o["totals"] = std::move(totals);
    o["latency"] = std::move(latency);
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> search_jobs(request_context ctx) {
    auto text = query_value(ctx, "q");
    if (!text || text->empty())
        co_return error_output(errc::invalid_argument,
                               "q (a job id, an id prefix or a unique_key) is required");
    if (text->size() > 512)
        co_return error_output(errc::invalid_argument, "q must be at most 512 characters");
    std::string queue;
    if (auto v = query_value(ctx, "queue"); v && !v->empty()) {
        if (!is_valid_queue_name(*v))
            co_return error_output(errc::invalid_argument,
                                   "queue must be 1 to 128 characters of A-Z a-z 0-9 _ . : -");
        queue = std::string{*v};
    }
    auto limit = int_param(ctx, "limit", 1, 100, 50);
    if (!limit) co_return error_output(limit.error());
    auto found = co_await ctx.s().broker.find_jobs(queue, std::string{*text}, scope_of(ctx), 1000,
                                                   static_cast<std::size_t>(*limit));
    if (!found) co_return error_output(found.error());
    json::array jobs;
    for (const auto& j : *found) jobs.push_back(job_status_json(j));
    json::object o;
    o["jobs"] = std::move(jobs);
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> job_payload(request_context ctx) {
    std::string id{ctx.params.get("id")};
    auto rec = co_await load_visible_job(ctx, std::move(id));
    if (!rec) co_return error_output(rec.error());
    response res{status::ok, 11};
    res.set(beast_http::field::content_type, "application/json");
    res.body() = rec->payload.empty() ? std::string{"{}"} : std::move(rec->payload);
    co_return route_output{std::move(res), nullptr};
}

asio::awaitable<route_output> retry_dead(request_context ctx) {
    auto q = co_await known_queue(ctx);
    if (!q) co_return error_output(q.error());
    auto n = co_await ctx.s().broker.retry_dead(*q, scope_of(ctx), ctx.s().now());
    if (!n) co_return error_output(n.error());
    json::object o;
    o["queue"] = *q;
    o["retried"] = *n;
    co_return json_output(status::ok, o);
}

asio::awaitable<route_output> purge_completed(request_context ctx) {
    auto q = co_await known_queue(ctx);
    if (!q) co_return error_output(q.error());
    auto n = co_await ctx.s().broker.purge_completed(*q, scope_of(ctx));
    if (!n) co_return error_output(n.error());
    json::object o;
    o["queue"] = *q;
    o["purged"] = *n;
    co_return json_output(status::ok, o);
}

}  // namespace

void add_dashboard_routes(route_table& t) {
    t.add(verb::get, "/api/session", session_info, route_access::open);
    t.add(verb::get, "/api/queues/{queue}/history", queue_history);
    t.add(verb::post, "/api/queues/{queue}/retry-dead", retry_dead);
    t.add(verb::post, "/api/queues/{queue}/purge-completed", purge_completed);
    t.add(verb::get, "/api/jobs/search", search_jobs);
    t.add(verb::get, "/api/jobs/{id}/payload", job_payload);
}

}  // namespace spool::http
