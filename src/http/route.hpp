// src/http/route.hpp
// What route functions see and return, the state they share, and the route
// table (router + functions). Route functions are plain coroutines taking a
// request_context by value; they never write to the socket themselves.
#pragma once

#include "http/event_hub.hpp"
#include "http/http_error.hpp"
#include "http/job_request.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "http/server_options.hpp"
#include "redis/connection.hpp"
#include "store/broker.hpp"
#include "store/rate_limiter.hpp"
#include "util/asio.hpp"
#include "util/clock.hpp"

#include <spool/job.hpp>

#include <spdlog/logger.h>
#include <boost/json/value.hpp>

#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace spool::http {

class http_session;
class sse_stream;

// Everything the server's parts share. Owned by the server, which outlives its
// sessions and routes; touched only from the server's executor.
struct server_state {
    server_state(asio::any_io_executor ex, server_options opts, store::broker& broker,
                 std::shared_ptr<redis::connection> conn, std::shared_ptr<redis::subscriber> sub,
                 const clock& clk);

    asio::any_io_executor ex;
    server_options opts;
    store::broker& broker;
    std::shared_ptr<redis::connection> conn;
    const clock& clk;
    metrics stats;
    event_hub hub;
    store::rate_limiter limiter;
    std::shared_ptr<spdlog::logger> log;
    bool stopping = false;
    std::unordered_set<http_session*> sessions;  // live connections

    bool auth_enabled() const noexcept { return !opts.api_keys.empty(); }
    millis now() const noexcept { return clk.now(); }
};

struct request_context {
    server_state* state = nullptr;
    const request* req = nullptr;  // owned by the session for the whole call
    route_params params;
    query_params query;
    std::string tenant;  // the caller's tenant; "" when auth is off
    std::string client_ip;

    server_state& s() const noexcept { return *state; }
    // Auth on and not an admin: the caller sees only its own tenant's jobs.
    bool tenant_scoped() const noexcept { return state->auth_enabled() && tenant != admin_tenant; }
};

// A response, or the start of a Server-Sent Events stream: when `stream` is set
// the session writes res's header and hands the socket to the stream.
struct route_output {
    response res;
    std::shared_ptr<sse_stream> stream;
};

using route_fn = asio::awaitable<route_output> (*)(request_context);

// Who may call a route: `api` needs the API key (when auth is on) and counts
// against the rate limit; `open` (/health, /metrics) needs neither; `websocket`
// is an api route served by upgrading the connection.
enum class route_access { api, open, websocket };

struct route_entry {
    std::string pattern;
    route_fn fn = nullptr;
    route_access access = route_access::api;
};

class route_table {
public:
    // Registers a route; a malformed or duplicate pattern is a programming error (asserts).
    void add(verb method, std::string_view pattern, route_fn fn, route_access access = route_access::api);
    const router& routes() const noexcept { return router_; }
    const route_entry& entry(int id) const { return entries_.at(static_cast<std::size_t>(id)); }

private:
    router router_;
    std::vector<route_entry> entries_;
};

// The whole API: job, admin, compat, schedule and dashboard routes, /ws, and the dashboard's files.
route_table make_api_routes();
void add_job_routes(route_table& t);
void add_admin_routes(route_table& t);
void add_compat_routes(route_table& t);
void add_schedule_routes(route_table& t);
void add_dashboard_routes(route_table& t);
void add_ui_routes(route_table& t);

// --- helpers for route functions ---
// The token of an `Authorization: Bearer <token>` header, or "".
std::string bearer_token(const request& req);
response json_response(beast_http::status st, const boost::json::value& body);
route_output json_output(beast_http::status st, const boost::json::value& body);
route_output error_output(const api_error& e);
route_output error_output(boost::system::error_code ec, std::string message = {});
// The job `id` when it exists and the caller may see it; otherwise job_not_found
// (a foreign tenant's job looks exactly like an unknown one).
asio::awaitable<api_result<job_record>> load_visible_job(request_context ctx, std::string id);
// The event that ends a finished job's history, for a client whose replay found
// none after its Last-Event-ID (it saw that event already when the ids match,
// else its id is past the end and it gets this event):
// the job's newest stream event when that is terminal, else one made from the
// record. nullopt while the job is not terminal (or is gone).
asio::awaitable<std::optional<job_event>> final_event(server_state& s, std::string id);
// GET .../result: the stored JSON text as is; 404 unknown (or foreign), 409 not
// completed yet, 410 when the result outlived its TTL (key gone or status expired).
asio::awaitable<route_output> result_output(request_context ctx, std::string id);

}  // namespace spool::http
