// src/http/http_error_test.cpp
#include "http/http_error.hpp"

#include <spool/error.hpp>

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

using namespace spool;
using namespace spool::http;
using boost::beast::http::status;

TEST(HttpError, MapsSpoolCodesToStatuses) {
    struct row {
        errc e;
        status s;
    };
    const row rows[] = {
        {errc::job_not_found, status::not_found},
        {errc::result_not_ready, status::conflict},
        {errc::result_expired, status::gone},
        {errc::payload_too_large, status::payload_too_large},
        {errc::invalid_argument, status::bad_request},
        {errc::unauthorized, status::unauthorized},
        {errc::forbidden, status::forbidden},
        {errc::rate_limited, status::too_many_requests},
        {errc::not_connected, status::service_unavailable},
        {errc::connection_lost, status::service_unavailable},
        {errc::timeout, status::service_unavailable},
        {errc::invalid_state, status::conflict},
        {errc::not_replicated, status::service_unavailable},
    };
    for (const auto& r : rows) {
        auto m = map_error(r.e);
        EXPECT_EQ(m.status, r.s) << to_code_name(r.e);
        EXPECT_EQ(m.code, to_code_name(r.e));
    }
}

TEST(HttpError, ForeignCodesAreInternal) {
    auto m = map_error(boost::system::errc::make_error_code(boost::system::errc::io_error));
    EXPECT_EQ(m.status, status::internal_server_error);
    EXPECT_EQ(m.code, "internal");
}

TEST(HttpError, BodyIsErrorObject) {
    auto res = error_response(api_error{errc::job_not_found, "job abc not found", {}});
    EXPECT_EQ(res.result(), status::not_found);
    EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
    auto v = boost::json::parse(res.body());
    EXPECT_EQ(v.at("error").at("code").as_string(), "job_not_found");
    EXPECT_EQ(v.at("error").at("message").as_string(), "job abc not found");
}

TEST(HttpError, EmptyMessageUsesCodeMessage) {
    auto res = error_response(api_error{errc::result_expired, "", {}});
    auto v = boost::json::parse(res.body());
    EXPECT_EQ(v.at("error").at("message").as_string(), "result expired");
}

TEST(HttpError, RateLimitedCarriesRetryAfterRoundedUp) {
    auto res = error_response(api_error{errc::rate_limited, "", std::chrono::milliseconds{1200}});
    EXPECT_EQ(res.result(), status::too_many_requests);
    EXPECT_EQ(res[boost::beast::http::field::retry_after], "2");
    EXPECT_EQ(retry_after_seconds(std::chrono::milliseconds{0}), 1);
    EXPECT_EQ(retry_after_seconds(std::chrono::milliseconds{1000}), 1);
    EXPECT_EQ(retry_after_seconds(std::chrono::milliseconds{1001}), 2);
}

TEST(HttpError, EscapesMessageText) {
    auto body = error_body("invalid_argument", "bad \"quote\"\n");
    auto v = boost::json::parse(body);
    EXPECT_EQ(v.at("error").at("message").as_string(), "bad \"quote\"\n");
}
