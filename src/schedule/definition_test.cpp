// src/schedule/definition_test.cpp
// Schedule definitions from JSON: defaults, every field, and errors naming the field.
#include "schedule/definition.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

using namespace spool::schedule;

namespace {

definition_result<definition> parse(const std::string& text) {
    return parse_definition(boost::json::parse(text), definition_defaults{});
}

// The field an invalid body is rejected for (and that its message starts with it).
std::string field_of(const std::string& text) {
    auto d = parse(text);
    EXPECT_FALSE(d.has_value()) << text;
    if (d) return "";
    EXPECT_EQ(d.error().message.rfind(d.error().field + ": ", 0), 0u) << d.error().message;
    return d.error().field;
}

}  // namespace

TEST(Definition, DefaultsForEverythingButNameAndCron) {
    auto d = parse(R"({"name":"nightly","cron":"0 3 * * *"})");
    ASSERT_TRUE(d.has_value()) << d.error().message;
    EXPECT_EQ(d->tz, "UTC");
    EXPECT_EQ(d->queue, "default");
    EXPECT_EQ(d->payload, "{}");
    EXPECT_EQ(d->priority, 0);
    EXPECT_EQ(d->max_retries, spool::default_max_retries);
    EXPECT_EQ(d->catch_up, catch_up_policy::none);
    EXPECT_EQ(d->overlap, overlap_policy::allow);
    EXPECT_FALSE(d->paused.has_value());
    EXPECT_EQ(d->timing(), "0 3 * * *|UTC");
}

TEST(Definition, EveryFieldAndTheStoredFormReadsBack) {
    auto d = parse(R"({"name":"report.daily","cron":"@every 1h30m","tz":"Europe/Berlin","queue":"reports",
        "payload":{"kind":"daily","n":[1,2]},"priority":"high","max_retries":1,"timeout_seconds":60,
        "ttl_seconds":120,"catch_up":"all","catch_up_limit":5,"overlap":"skip","paused":true})");
    ASSERT_TRUE(d.has_value()) << d.error().message;
    EXPECT_EQ(d->priority, 10);
    EXPECT_EQ(d->catch_up_limit, 5);
    EXPECT_TRUE(*d->paused);
    auto again = parse_definition(boost::json::parse(to_json(*d)), definition_defaults{});
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(again->name, "report.daily");
    EXPECT_EQ(again->tz, "Europe/Berlin");
    EXPECT_EQ(again->queue, "reports");
    EXPECT_EQ(boost::json::parse(again->payload), boost::json::parse(R"({"kind":"daily","n":[1,2]})"));
    EXPECT_EQ(again->timeout.count(), 60);
    EXPECT_EQ(again->ttl.count(), 120);
    EXPECT_EQ(again->catch_up, catch_up_policy::all);
    EXPECT_EQ(again->overlap, overlap_policy::skip);
    EXPECT_FALSE(again->paused.has_value());  // pausing is state, not definition
}

TEST(Definition, BadInputNamesTheField) {
    EXPECT_EQ(field_of(R"({"cron":"* * * * *"})"), "name");
    EXPECT_EQ(field_of(R"({"name":"a b","cron":"* * * * *"})"), "name");
    EXPECT_EQ(field_of(R"({"name":"a"})"), "cron");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"61 * * * *"})"), "cron");
    EXPECT_EQ(field_of(R"({"name":"a","cron":5})"), "cron");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","tz":"Nowhere/Land"})"), "tz");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","queue":"no spaces"})"), "queue");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","queue":"p#1"})"), "queue");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","catch_up":"some"})"), "catch_up");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","overlap":"never"})"), "overlap");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","priority":"urgent"})"), "priority");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","priority":1.5})"), "priority");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","max_retries":"3"})"), "max_retries");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","timeout_seconds":0})"), "timeout_seconds");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","paused":"yes"})"), "paused");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","catch_up_limit":0})"), "catch_up_limit");
    EXPECT_EQ(field_of(R"({"name":"a","cron":"* * * * *","overlpa":"skip"})"), "overlpa");
    EXPECT_EQ(field_of(R"([1,2])"), "body");
}
