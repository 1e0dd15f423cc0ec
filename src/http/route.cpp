// src/http/route.cpp
#include "http/route.hpp"

#include "util/ids.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/json/serialize.hpp>

#include <cassert>

namespace spool::http {

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
    return t;
}

response json_response(beast_http::status st, const boost::json::value& body) {
    response res{st, 11};
    res.set(beast_http::field::content_type, "application/json");
    res.body() = boost::json::serialize(body);
    return res;
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
