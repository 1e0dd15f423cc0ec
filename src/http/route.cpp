// src/http/route.cpp
#include "http/route.hpp"

#include "http/sse_format.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cassert>

namespace spool::http {

namespace json = boost::json;

server_state::server_state(asio::any_io_executor ex_, server_options opts_, store::broker& broker_,
                           std::shared_ptr<redis::connection> conn_, std::shared_ptr<redis::subscriber> sub_,
                           const clock& clk_)
    : ex{std::move(ex_)},
      opts{std::move(opts_)},
      broker{broker_},
      conn{std::move(conn_)},
      clk{clk_},
      hub{std::move(sub_), broker_.updates_channel(),
          [this](const boost::json::object& m) { stats.observe_update(m); }},
      limiter{*conn, store::rate_limit_options{broker_.options().prefix, opts.rate_limit_per_second,
                                               opts.rate_limit_burst, std::chrono::milliseconds{250}}},
      log{log::get("http")} {}

void route_table::add(verb method, std::string_view pattern, route_fn fn, route_access access) {
    int id = static_cast<int>(entries_.size());
    [[maybe_unused]] bool added = router_.add(method, pattern, id);
    assert(added && "malformed or duplicate route pattern");
    entries_.push_back(route_entry{std::string{pattern}, fn, access});
}

route_table make_api_routes() {
    route_table t;
    add_job_routes(t);
    add_admin_routes(t);
    add_compat_routes(t);
    add_schedule_routes(t);

    add_dashboard_routes(t);
    add_ui_routes(t);
    return t;
}

response json_response(beast_http::status st, const boost::json::value& body) {
    response res{st, 11};
    res.set(beast_http::field::content_type, "application/json");
    res.body() = boost::json::serialize(body);
    return res;
}

std::string bearer_token(const request& req) {
    auto it = req.find(beast_http::field::authorization);
    if (it == req.end()) return {};
    std::string_view v{it->value().data(), it->value().size()};
    if (v.size() < 7 || !boost::beast::iequals(v.substr(0, 7), "Bearer ")) return {};
    v.remove_prefix(7);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    return std::string{v};
}

route_output json_output(beast_http::status st, const boost::json::value& body) {
    return route_output{json_response(st, body), nullptr};
}

route_output error_output(const api_error& e) { return route_output{error_response(e), nullptr}; }

route_output error_output(boost::system::error_code ec, std::string message) {
    return error_output(api_error{ec, std::move(message), {}});
}

asio::awaitable<api_result<job_record>> load_visible_job(request_context ctx, std::string id) {
    api_error not_found{errc::job_not_found, "job " + id + " not found", {}};
    if (!is_valid_job_id(id)) co_return not_found;
    auto rec = co_await ctx.s().broker.get(id);
    if (!rec) {
        if (rec.error() == errc::job_not_found) co_return not_found;
        co_return api_error{rec.error(), "", {}};
    }
    if (ctx.tenant_scoped() && rec->tenant != ctx.tenant) co_return not_found;
    co_return std::move(*rec);
}

asio::awaitable<std::optional<job_event>> final_event(server_state& s, std::string id) {
    auto last = co_await s.broker.last_event(id);
    if (last && *last && is_terminal_event(**last)) co_return std::move(**last);
    auto rec = co_await s.broker.get(id);
    if (!rec || !is_terminal(rec->status)) co_return std::nullopt;
    job_event e;
    e.id = last && *last ? (*last)->id : std::string{"0"};
    e.type = "status";
    json::object data;
    data["status"] = to_string(rec->status);
    data["ts"] = rec->completed_at;
    e.data = json::serialize(data);
    co_return e;
}

asio::awaitable<route_output> result_output(request_context ctx, std::string id) {
    if (ctx.tenant_scoped()) {
        auto rec = co_await load_visible_job(ctx, id);
        if (!rec) co_return error_output(rec.error());
    } else if (!is_valid_job_id(id)) {
        co_return error_output(errc::job_not_found, "job " + id + " not found");
    }
    auto r = co_await ctx.s().broker.get_result(id);
    if (!r && r.error() == errc::result_not_ready) {
        // Not completed: either still running (409) or already expired by the janitor (410).
        auto rec = co_await ctx.s().broker.get(id);
        if (rec && rec->status == job_status::expired) co_return error_output(errc::result_expired);
        if (rec)
            co_return error_output(
                errc::result_not_ready,
                "job " + id + " is " + std::string{to_string(rec->status)} + "; no result yet");
    }
    if (!r) co_return error_output(r.error());
    response res{beast_http::status::ok, 11};
    res.set(beast_http::field::content_type, "application/json");
    res.body() = std::move(r->data);
    co_return route_output{std::move(res), nullptr};
}

}  // namespace spool::http
