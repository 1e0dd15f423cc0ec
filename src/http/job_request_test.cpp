// src/http/job_request_test.cpp
#include "http/job_request.hpp"

#include "util/time_format.hpp"

#include <spool/error.hpp>

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

using namespace spool;
using namespace spool::http;

namespace {

constexpr millis now = 1'764'000'790'000;

api_result<job_spec> parse(std::string_view body, submit_defaults d = {}) {
    auto v = parse_json(body);
    EXPECT_TRUE(v.has_value()) << body;
    if (!v) return v.error();
    return parse_submit(*v, d, now);
}

// The error message of a failed parse ("" when it succeeded).
std::string error_of(std::string_view body, submit_defaults d = {}) {
    auto r = parse(body, d);
    if (r) return "";
    EXPECT_EQ(r.error().ec, errc::invalid_argument) << body;
    return r.error().message;
}

}  // namespace

TEST(JobRequest, DefaultsWhenEmpty) {
    auto r = parse("{}");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->queue, "default");
    EXPECT_EQ(r->payload, "{}");
    EXPECT_EQ(r->priority, 0);
    EXPECT_EQ(r->max_retries, default_max_retries);
    EXPECT_EQ(r->timeout, default_job_timeout);
    EXPECT_EQ(r->ttl, default_result_ttl);
    EXPECT_EQ(r->run_at, 0);
    EXPECT_EQ(r->unique_key, "");
}

TEST(JobRequest, ReadsEveryField) {
    auto r = parse(R"({"queue":"solve","payload":{"a":[1,2]},"priority":5,"max_retries":2,
                       "timeout_seconds":60,"ttl_seconds":120,"delay_ms":1500,"unique_key":"k1","tenant":"t"})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->queue, "solve");
    EXPECT_EQ(r->payload, R"({"a":[1,2]})");
    EXPECT_EQ(r->priority, 5);
    EXPECT_EQ(r->max_retries, 2);
    EXPECT_EQ(r->timeout, std::chrono::seconds{60});
    EXPECT_EQ(r->ttl, std::chrono::seconds{120});
    EXPECT_EQ(r->run_at, now + 1500);
    EXPECT_EQ(r->unique_key, "k1");
    EXPECT_EQ(r->tenant, "t");
}

TEST(JobRequest, AcceptsAliases) {
    auto r = parse(R"({"service_required":"simulation","input_json":[1,"x"]})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->queue, "simulation");
    EXPECT_EQ(r->payload, R"([1,"x"])");
}

TEST(JobRequest, PayloadMayBeAnyJsonValue) {
    EXPECT_EQ(parse(R"({"payload":42})")->payload, "42");
    EXPECT_EQ(parse(R"({"payload":"text"})")->payload, R"("text")");
    EXPECT_EQ(parse(R"({"payload":null})")->payload, "{}");  // null counts as absent
}

TEST(JobRequest, PriorityWords) {
    EXPECT_EQ(parse(R"({"priority":"high"})")->priority, 10);
    EXPECT_EQ(parse(R"({"priority":"normal"})")->priority, 0);
    EXPECT_EQ(parse(R"({"priority":"low"})")->priority, -10);
    EXPECT_EQ(parse(R"({"priority":-3})")->priority, -3);
    EXPECT_EQ(parse(R"({"priority":7.0})")->priority, 7);
    EXPECT_NE(error_of(R"({"priority":"urgent"})").find("priority"), std::string::npos);
    EXPECT_NE(error_of(R"({"priority":1.5})").find("priority"), std::string::npos);
    EXPECT_NE(error_of(R"({"priority":100000})").find("priority"), std::string::npos);
    EXPECT_NE(error_of(R"({"priority":true})").find("priority"), std::string::npos);
}

TEST(JobRequest, WrongTypesNameTheField) {
    EXPECT_NE(error_of(R"({"queue":5})").find("queue"), std::string::npos);
    EXPECT_NE(error_of(R"({"service_required":[]})").find("queue"), std::string::npos);
    EXPECT_NE(error_of(R"({"max_retries":"3"})").find("max_retries"), std::string::npos);
    EXPECT_NE(error_of(R"({"max_retries":-1})").find("max_retries"), std::string::npos);
    EXPECT_NE(error_of(R"({"timeout_seconds":"60"})").find("timeout_seconds"), std::string::npos);
    EXPECT_NE(error_of(R"({"timeout_seconds":0})").find("timeout_seconds"), std::string::npos);
    EXPECT_NE(error_of(R"({"ttl_seconds":{}})").find("ttl_seconds"), std::string::npos);
    EXPECT_NE(error_of(R"({"delay_ms":-5})").find("delay_ms"), std::string::npos);
    EXPECT_NE(error_of(R"({"unique_key":1})").find("unique_key"), std::string::npos);
    EXPECT_NE(error_of(R"({"scheduled_at":12})").find("scheduled_at"), std::string::npos);
    EXPECT_NE(error_of(R"({"queue":"has space"})").find("queue"), std::string::npos);
    EXPECT_NE(error_of(R"({"queue":"brace}"})").find("queue"), std::string::npos);
    EXPECT_NE(error_of("[1,2]").find("object"), std::string::npos);
}

TEST(JobRequest, TimeoutSecondsRoundsUp) {
    EXPECT_EQ(parse(R"({"timeout_seconds":1.2})")->timeout.count(), 2);
}

TEST(JobRequest, ScheduledAtIsIso8601) {
    auto r = parse(R"({"scheduled_at":"2025-11-24T16:14:10Z"})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->run_at, now + 60'000);
    // In the past: run now.
    EXPECT_EQ(parse(R"({"scheduled_at":"2020-01-01T00:00:00Z"})")->run_at, 0);
    EXPECT_NE(error_of(R"({"scheduled_at":"tomorrow"})").find("scheduled_at"), std::string::npos);
    EXPECT_NE(error_of(R"({"scheduled_at":"2025-11-24T16:14:10Z","delay_ms":5})").find("delay_ms"),
              std::string::npos);
}

TEST(JobRequest, CompatRequiresInputJson) {
    submit_defaults d;
    d.queue = "solve";
    d.require_payload = true;
    EXPECT_NE(error_of(R"({"priority":0})", d).find("input_json"), std::string::npos);
    auto r = parse(R"({"input_json":{"x":1},"priority":0,"ttl_seconds":3600})", d);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->queue, "solve");
    EXPECT_EQ(r->ttl.count(), 3600);
}

TEST(JobRequest, OversizedPayloadIsPayloadTooLarge) {
    submit_defaults d;
    d.max_payload_bytes = 10;
    auto r = parse(R"({"payload":"0123456789abcdef"})", d);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().ec, errc::payload_too_large);
}

TEST(JobRequest, MalformedJsonIsInvalidArgument) {
    auto v = parse_json("{\"queue\": ");
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().ec, errc::invalid_argument);
    EXPECT_NE(v.error().message.find("malformed JSON"), std::string::npos);
}

TEST(JobRequest, ListQuery) {
    auto q = parse_list_query({{"queue", "solve"}, {"status", "failed"}, {"limit", "10"}, {"cursor", "abc"}});
    ASSERT_TRUE(q);
    EXPECT_EQ(q->queue, "solve");
    EXPECT_EQ(q->status, job_status::failed);
    EXPECT_EQ(q->limit, 10u);
    EXPECT_EQ(q->cursor, "abc");
    auto d = parse_list_query({});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->limit, 50u);
    EXPECT_FALSE(d->status);
    EXPECT_FALSE(parse_list_query({{"status", "running"}}));
    EXPECT_FALSE(parse_list_query({{"limit", "0"}}));
    EXPECT_FALSE(parse_list_query({{"limit", "abc"}}));
    EXPECT_FALSE(parse_list_query({{"limit", "1001"}}));
}
