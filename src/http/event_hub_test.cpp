// src/http/event_hub_test.cpp
// Fan-out of job_updates messages, without Redis (dispatch() is fed directly).
#include "http/event_hub.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

using namespace spool::http;

namespace {

struct recorder : event_listener {
    std::vector<std::string> seen;  // "type:job_id"
    void on_update(const job_update& u) override { seen.push_back(u.type + ":" + u.job_id); }
};

}  // namespace

TEST(EventHub, WakesListenersOfTheNamedJobAndAllListeners) {
    std::vector<std::string> observed;
    event_hub hub{nullptr, "spool:job_updates",
                  [&](const boost::json::object& m) { observed.emplace_back(m.at("type").as_string()); }};
    recorder a, b, all;
    auto ra = hub.watch_job("job-a", &a);
    auto rb = hub.watch_job("job-b", &b);
    auto rall = hub.watch_all(&all);
    EXPECT_EQ(hub.listeners(), 3u);
    hub.dispatch(R"({"type":"job_started","job_id":"job-a","queue":"q","status":"in_progress","ts":1})");
    hub.dispatch(R"({"type":"job_progress","job_id":"job-b","queue":"q","progress":5})");
    EXPECT_EQ(a.seen, (std::vector<std::string>{"job_started:job-a"}));
    EXPECT_EQ(b.seen, (std::vector<std::string>{"job_progress:job-b"}));
    EXPECT_EQ(all.seen.size(), 2u);
    EXPECT_EQ(observed, (std::vector<std::string>{"job_started", "job_progress"}));
}

TEST(EventHub, RegistrationEndsWithItsHandle) {
    event_hub hub{nullptr, "c", nullptr};
    recorder a;
    {
        auto r = hub.watch_job("x", &a);
        auto moved = std::move(r);
        EXPECT_FALSE(r);
        EXPECT_TRUE(moved);
        EXPECT_EQ(hub.listeners(), 1u);
    }
    EXPECT_EQ(hub.listeners(), 0u);
    hub.dispatch(R"({"type":"job_created","job_id":"x"})");
    EXPECT_TRUE(a.seen.empty());
}

TEST(EventHub, IgnoresGarbageAndOutlivingRegistrationsAreHarmless) {
    recorder a;
    event_hub::registration r;
    {
        event_hub hub{nullptr, "c", nullptr};
        r = hub.watch_all(&a);
        hub.dispatch("not json");
        hub.dispatch("[1,2]");
        EXPECT_TRUE(a.seen.empty());
    }
    r.reset();  // the hub is gone: nothing to remove, no crash
    SUCCEED();
}
