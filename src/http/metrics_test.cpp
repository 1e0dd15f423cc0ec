// src/http/metrics_test.cpp
#include "http/metrics.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

using namespace spool;
using namespace spool::http;

namespace {

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST(Histogram, BucketsAreInclusiveUpperBounds) {
    histogram h{{1, 2, 5}};
    h.observe(0.5);
    h.observe(1);
    h.observe(3);
    h.observe(7);
    EXPECT_EQ(h.counts(), (std::vector<std::uint64_t>{2, 0, 1, 1}));
    EXPECT_EQ(h.count(), 4u);
    EXPECT_DOUBLE_EQ(h.sum(), 11.5);
}

TEST(Metrics, RendersQueueCountersAndDepths) {
    metrics m;
    metrics_inputs in;
    store::queue_info q;
    q.name = "solve";
    q.queued = 3;
    q.active = 1;
    q.submitted_total = 10;
    q.completed_total = 6;
    q.failed_total = 1;
    in.queues.push_back(q);
    in.workers = 2;
    in.redis_up = true;
    auto text = m.render(in);
    EXPECT_TRUE(has_line(text, "# TYPE spool_jobs_submitted_total counter")) << text;
    EXPECT_TRUE(has_line(text, "spool_jobs_submitted_total{queue=\"solve\"} 10"));
    EXPECT_TRUE(has_line(text, "spool_jobs_completed_total{queue=\"solve\"} 6"));
    EXPECT_TRUE(has_line(text, "spool_jobs_failed_total{queue=\"solve\"} 1"));
    EXPECT_TRUE(has_line(text, "spool_queue_depth{queue=\"solve\",state=\"queued\"} 3"));
    EXPECT_TRUE(has_line(text, "spool_queue_depth{queue=\"solve\",state=\"in_progress\"} 1"));
    EXPECT_TRUE(has_line(text, "spool_workers 2"));
    EXPECT_TRUE(has_line(text, "spool_redis_up 1"));
}

TEST(Metrics, JobHistogramsFromUpdates) {
    metrics m;
    m.observe_update(boost::json::parse(
                         R"({"type":"job_completed","job_id":"x","queue":"solve","status":"completed","ts":1,
                             "duration_ms":250,"wait_ms":20})")
                         .as_object());
    m.observe_update(
        boost::json::parse(R"({"type":"job_progress","job_id":"x","queue":"solve","progress":5})")
            .as_object());
    auto text = m.render({});
    EXPECT_TRUE(has_line(text, "# TYPE spool_job_duration_seconds histogram"));
    EXPECT_TRUE(has_line(text, "spool_job_duration_seconds_bucket{queue=\"solve\",le=\"0.1\"} 0")) << text;
    EXPECT_TRUE(has_line(text, "spool_job_duration_seconds_bucket{queue=\"solve\",le=\"0.25\"} 1"));
    EXPECT_TRUE(has_line(text, "spool_job_duration_seconds_bucket{queue=\"solve\",le=\"+Inf\"} 1"));
    EXPECT_TRUE(has_line(text, "spool_job_duration_seconds_sum{queue=\"solve\"} 0.25"));
    EXPECT_TRUE(has_line(text, "spool_job_duration_seconds_count{queue=\"solve\"} 1"));
    EXPECT_TRUE(has_line(text, "spool_job_wait_seconds_bucket{queue=\"solve\",le=\"0.025\"} 1"));
    EXPECT_TRUE(has_line(text, "spool_job_wait_seconds_count{queue=\"solve\"} 1"));
}

TEST(Metrics, HttpRequestsUseRoutePatterns) {
    metrics m;
    m.observe_request("/api/jobs/{id}", "GET", 200, 0.002);
    m.observe_request("/api/jobs/{id}", "GET", 200, 0.004);
    m.observe_request("/api/jobs/{id}", "GET", 404, 0.001);
    auto text = m.render({});
    EXPECT_TRUE(
        has_line(text, "spool_http_requests_total{route=\"/api/jobs/{id}\",method=\"GET\",status=\"200\"} 2"))
        << text;
    EXPECT_TRUE(has_line(
        text, "spool_http_requests_total{route=\"/api/jobs/{id}\",method=\"GET\",status=\"404\"} 1"));
    EXPECT_TRUE(has_line(text, "spool_http_request_duration_seconds_count{route=\"/api/jobs/{id}\"} 3"));
    EXPECT_TRUE(
        has_line(text, "spool_http_request_duration_seconds_bucket{route=\"/api/jobs/{id}\",le=\"+Inf\"} 3"));
}

TEST(Metrics, EveryLineIsCommentOrSample) {
    metrics m;
    m.observe_request("/x", "GET", 200, 0.1);
    m.observe_job("q\"1", 1.0, 0.5);
    metrics_inputs in;
    in.queues.push_back(store::queue_info{});
    in.queues.back().name = "a\\b";
    auto text = m.render(in);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        auto line = text.substr(start, end - start);
        start = end + 1;
        ASSERT_FALSE(line.empty());
        if (line[0] == '#') {
            EXPECT_TRUE(line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) << line;
            continue;
        }
        // name{labels} value  or  name value
        auto space = line.rfind(' ');
        ASSERT_NE(space, std::string::npos) << line;
        auto value = line.substr(space + 1);
        EXPECT_NO_THROW((void)std::stod(value)) << line;
        EXPECT_EQ(line.rfind("spool_", 0), 0u) << line;
    }
    EXPECT_NE(text.find("queue=\"q\\\"1\""), std::string::npos);
    EXPECT_NE(text.find("queue=\"a\\\\b\""), std::string::npos);
}

TEST(Metrics, EscapesLabels) { EXPECT_EQ(metrics::escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd"); }
