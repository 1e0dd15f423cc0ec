// src/http/router_test.cpp
#include "http/router.hpp"

#include <gtest/gtest.h>

using namespace spool::http;

namespace {

router api_router() {
    router r;
    EXPECT_TRUE(r.add(verb::post, "/api/jobs", 1));
    EXPECT_TRUE(r.add(verb::get, "/api/jobs", 2));
    EXPECT_TRUE(r.add(verb::get, "/api/jobs/{id}", 3));
    EXPECT_TRUE(r.add(verb::delete_, "/api/jobs/{id}", 4));
    EXPECT_TRUE(r.add(verb::get, "/api/jobs/{id}/result", 5));
    EXPECT_TRUE(r.add(verb::post, "/api/queues/{queue}/pause", 6));
    // Registered before the literal on purpose: order must not matter.
    EXPECT_TRUE(r.add(verb::get, "/solve/async/{id}", 7));
    EXPECT_TRUE(r.add(verb::get, "/solve/async/stats", 8));
    EXPECT_TRUE(r.add(verb::delete_, "/solve/async/{id}", 9));
    EXPECT_TRUE(r.add(verb::get, "/health", 10));
    EXPECT_TRUE(r.add(verb::get, "/", 11));
    return r;
}

}  // namespace

TEST(Router, MatchesLiteralRoutes) {
    auto r = api_router();
    auto m = r.match(verb::post, "/api/jobs");
    ASSERT_EQ(m.kind, match_kind::found);
    EXPECT_EQ(m.id, 1);
    EXPECT_EQ(m.pattern, "/api/jobs");
    EXPECT_TRUE(m.params.items().empty());
    EXPECT_EQ(r.match(verb::get, "/health").id, 10);
    EXPECT_EQ(r.match(verb::get, "/").id, 11);
}

TEST(Router, CapturesParameters) {
    auto r = api_router();
    auto m = r.match(verb::get, "/api/jobs/0193a6b2-aaaa/result");
    ASSERT_EQ(m.kind, match_kind::found);
    EXPECT_EQ(m.id, 5);
    EXPECT_EQ(m.params.get("id"), "0193a6b2-aaaa");
    EXPECT_EQ(m.params.get("missing"), "");
    auto p = r.match(verb::post, "/api/queues/solve/pause");
    EXPECT_EQ(p.id, 6);
    EXPECT_EQ(p.params.get("queue"), "solve");
    EXPECT_EQ(p.pattern, "/api/queues/{queue}/pause");
}

TEST(Router, StatsIsNotCapturedByIdParameter) {
    auto r = api_router();
    auto m = r.match(verb::get, "/solve/async/stats");
    ASSERT_EQ(m.kind, match_kind::found);
    EXPECT_EQ(m.id, 8);
    auto j = r.match(verb::get, "/solve/async/0193a6b2");
    EXPECT_EQ(j.id, 7);
    EXPECT_EQ(j.params.get("id"), "0193a6b2");
    // DELETE has only the parameter route: "stats" is then an id.
    EXPECT_EQ(r.match(verb::delete_, "/solve/async/stats").id, 9);
}

TEST(Router, IgnoresOneTrailingSlash) {
    auto r = api_router();
    EXPECT_EQ(r.match(verb::get, "/api/jobs/").id, 2);
    EXPECT_EQ(r.match(verb::get, "/api/jobs//").kind, match_kind::not_found);
    EXPECT_EQ(r.match(verb::get, "/api//jobs").kind, match_kind::not_found);
}

TEST(Router, UnknownPathIsNotFound) {
    auto r = api_router();
    EXPECT_EQ(r.match(verb::get, "/nope").kind, match_kind::not_found);
    EXPECT_EQ(r.match(verb::get, "/api/jobs/a/b/c").kind, match_kind::not_found);
    EXPECT_EQ(r.match(verb::get, "/api").kind, match_kind::not_found);
    EXPECT_EQ(r.match(verb::get, "").kind, match_kind::found);  // empty path is "/"
}

TEST(Router, WrongMethodIsMethodNotAllowedWithAllow) {
    auto r = api_router();
    auto m = r.match(verb::put, "/api/jobs");
    EXPECT_EQ(m.kind, match_kind::method_not_allowed);
    EXPECT_EQ(m.allow, "GET, HEAD, POST");
    auto s = r.match(verb::post, "/solve/async/stats");
    EXPECT_EQ(s.kind, match_kind::method_not_allowed);
    EXPECT_EQ(s.allow, "DELETE, GET, HEAD");
}

TEST(Router, HeadIsServedWhereGetIs) {
    auto r = api_router();
    auto m = r.match(verb::head, "/api/jobs");
    EXPECT_EQ(m.kind, match_kind::found);
    EXPECT_EQ(m.id, r.match(verb::get, "/api/jobs").id);
    // No GET route there: HEAD is not allowed either.
    auto p = r.match(verb::head, "/api/queues/q/pause");
    EXPECT_EQ(p.kind, match_kind::method_not_allowed);
    EXPECT_EQ(p.allow, "POST");
}

TEST(Router, RejectsMalformedAndDuplicatePatterns) {
    router r;
    EXPECT_FALSE(r.add(verb::get, "no-slash", 1));
    EXPECT_FALSE(r.add(verb::get, "/a/{unclosed", 1));
    EXPECT_FALSE(r.add(verb::get, "/a/x{id}", 1));
    EXPECT_FALSE(r.add(verb::get, "/a//b", 1));
    EXPECT_TRUE(r.add(verb::get, "/a/{id}", 1));
    EXPECT_FALSE(r.add(verb::get, "/a/{other}", 2));  // same shape
    EXPECT_TRUE(r.add(verb::post, "/a/{other}", 3));  // another method is fine
}

TEST(Router, MatchesDecodedSegments) {
    router r;
    ASSERT_TRUE(r.add(verb::get, "/api/queues/{queue}", 1));
    // A decoded "%2F" stays inside its segment.
    auto m = r.match(verb::get, std::vector<std::string>{"api", "queues", "a/b"});
    ASSERT_EQ(m.kind, match_kind::found);
    EXPECT_EQ(m.params.get("queue"), "a/b");
    EXPECT_EQ(r.match(verb::get, std::vector<std::string>{"api", "queues", ""}).kind, match_kind::not_found);
}

TEST(Router, PrefersLiteralAtFirstDifference) {
    router r;
    ASSERT_TRUE(r.add(verb::get, "/{a}/x", 1));
    ASSERT_TRUE(r.add(verb::get, "/y/{b}", 2));
    EXPECT_EQ(r.match(verb::get, "/y/x").id, 2);
    EXPECT_EQ(r.match(verb::get, "/z/x").id, 1);
}
