// src/http/http_error.cpp
#include "http/http_error.hpp"

#include <spool/error.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

namespace spool::http {

using beast_http::status;

void throw_exception_from_error(const api_error& e, const boost::source_location& loc) {
    boost::throw_exception(boost::system::system_error(e.ec, e.message), loc);
}

error_mapping map_error(const boost::system::error_code& ec) {
    if (ec.category() != spool_category()) return {status::internal_server_error, "internal"};
    auto e = static_cast<errc>(ec.value());
    std::string name = to_code_name(e);
    switch (e) {
        case errc::job_not_found:
        case errc::queue_not_found:
            return {status::not_found, name};
        case errc::result_not_ready:
        case errc::invalid_state:
        case errc::duplicate_job:
        case errc::lease_lost:
        case errc::queue_paused:
            return {status::conflict, name};
        case errc::result_expired:
            return {status::gone, name};
        case errc::payload_too_large:
            return {status::payload_too_large, name};
        case errc::invalid_argument:
        case errc::invalid_input:
        case errc::unknown_queue:
        case errc::unknown_dependency:
            return {status::bad_request, name};
        case errc::unauthorized:
            return {status::unauthorized, name};
        case errc::forbidden:
            return {status::forbidden, name};
        case errc::rate_limited:
            return {status::too_many_requests, name};
        case errc::not_connected:
        case errc::connection_lost:
        case errc::timeout:
        case errc::shutting_down:
        case errc::not_replicated:
            return {status::service_unavailable, name};
        case errc::bad_reply:
        case errc::redis_error:
            return {status::bad_gateway, name};
        case errc::cancelled:
        case errc::handler_failed:
        case errc::config_error:
            return {status::internal_server_error, name};
    }
    return {status::internal_server_error, "internal"};
}

std::string error_body(std::string_view code, std::string_view message) {
    boost::json::object inner;
    inner["code"] = code;
    inner["message"] = message;
    boost::json::object outer;
    outer["error"] = std::move(inner);
    return boost::json::serialize(outer);
}

long long retry_after_seconds(std::chrono::milliseconds d) noexcept {
    auto s = (d.count() + 999) / 1000;
    return s < 1 ? 1 : s;
}

response error_response(status st, std::string_view code, std::string_view message) {
    response res{st, 11};
    res.set(beast_http::field::content_type, "application/json");
    res.body() = error_body(code, message);
    return res;
}

response error_response(const api_error& e) {
    auto m = map_error(e.ec);
    std::string message = e.message.empty() ? e.ec.message() : e.message;
    auto res = error_response(m.status, m.code, message);
    if (e.ec == errc::rate_limited)
        res.set(beast_http::field::retry_after, std::to_string(retry_after_seconds(e.retry_after)));
    return res;
}

}  // namespace spool::http
