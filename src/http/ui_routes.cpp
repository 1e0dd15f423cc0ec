// src/http/ui_routes.cpp
// The web dashboard: `/` and everything under `/ui/` answer with the files
// compiled in from ui/ (src/ui/assets.hpp). A path that names no file gets
// index.html, so the single-page app's own links survive a reload. No API key is
// needed to load the page itself: the app asks for one and sends it on /api calls.
#include "http/route.hpp"
#include "ui/assets.hpp"

#include <boost/beast/http/field.hpp>

namespace spool::http {

using beast_http::status;

namespace {

// What every dashboard file is sent with: revalidate each time (the ETag makes
// that a 304), and no framing, sniffing or third-party content.
void set_ui_headers(response& res, const ui::asset& a) {
    res.set(beast_http::field::content_type, a.content_type);
    res.set(beast_http::field::etag, a.etag);
    res.set(beast_http::field::cache_control, "no-cache");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    res.set("Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
}

asio::awaitable<route_output> ui_file(request_context ctx) {
    std::string path;
    for (const auto& [name, value] : ctx.params.items()) path += "/" + value;
    auto a = path.empty() ? std::nullopt : ui::find_asset(path);
    if (!a) a = ui::find_asset("/index.html");
    if (!a)
        co_return route_output{
            error_response(status::not_found, "not_found", "the dashboard was not built into this binary"),
            nullptr};
    response res{status::ok, 11};
    set_ui_headers(res, *a);
    auto inm = ctx.req->find(beast_http::field::if_none_match);
    if (inm != ctx.req->end() && std::string_view{inm->value().data(), inm->value().size()} == a->etag) {
        res.result(status::not_modified);
        co_return route_output{std::move(res), nullptr};
    }
    res.body() = std::string{a->body};
    co_return route_output{std::move(res), nullptr};
}

}  // namespace

void add_ui_routes(route_table& t) {
    // The router captures whole segments: one pattern per depth.
    t.add(verb::get, "/", ui_file, route_access::open);
    t.add(verb::get, "/ui", ui_file, route_access::open);
    t.add(verb::get, "/ui/{a}", ui_file, route_access::open);
    t.add(verb::get, "/ui/{a}/{b}", ui_file, route_access::open);
    t.add(verb::get, "/ui/{a}/{b}/{c}", ui_file, route_access::open);
    t.add(verb::get, "/ui/{a}/{b}/{c}/{d}", ui_file, route_access::open);
}

}  // namespace spool::http
