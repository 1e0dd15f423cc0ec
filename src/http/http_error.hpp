// src/http/http_error.hpp
// The only place that turns an error into an HTTP status and the JSON error body
// {"error":{"code":"...","message":"..."}}. Route code never picks a status for a
// failure itself: it returns an api_error (or an error_code) and lets this file map it.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace spool::http {

namespace beast_http = boost::beast::http;
using request = beast_http::request<beast_http::string_body>;
using response = beast_http::response<beast_http::string_body>;

// A failure with a message meant for the client. `message` empty: the error
// code's own message. `retry_after` is sent as Retry-After (seconds, rounded up)
// when the code is errc::rate_limited.
struct api_error {
    boost::system::error_code ec;
    std::string message;
    std::chrono::milliseconds retry_after{0};
};

// Lets boost::system::result<T, api_error>::value() throw (never used on the hot path).
[[noreturn]] void throw_exception_from_error(const api_error& e, const boost::source_location& loc);

struct error_mapping {
    beast_http::status status;
    std::string code;  // stable snake_case name, e.g. "job_not_found"
};

// error_code → status and code name. spool::errc values map as documented in
// docs/http-api.md (job_not_found 404, result_not_ready 409, result_expired 410,
// payload_too_large 413, invalid_argument 400, unauthorized 401, forbidden 403,
// rate_limited 429, not_connected/connection_lost/timeout 503, invalid_state 409, ...);
// anything else is 500 "internal".
error_mapping map_error(const boost::system::error_code& ec);

// The JSON text {"error":{"code":...,"message":...}}.
std::string error_body(std::string_view code, std::string_view message);

// A complete error response for `e` (JSON body, Retry-After when rate limited).
// The session sets version, keep-alive and Content-Length.
response error_response(const api_error& e);
// The same for failures that have no error_code: unknown route (404
// "not_found"), wrong method (405 "method_not_allowed"), malformed request (400).
response error_response(beast_http::status status, std::string_view code, std::string_view message);

// Retry-After value: whole seconds, rounded up, at least 1.
long long retry_after_seconds(std::chrono::milliseconds d) noexcept;

}  // namespace spool::http
