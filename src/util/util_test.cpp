// src/util/util_test.cpp
#include "util/ids.hpp"
#include "util/log.hpp"
#include "util/task_group.hpp"
#include "util/time_format.hpp"

#include <spool/error.hpp>
#include <spool/event_loop.hpp>
#include <spool/job.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <set>
#include <thread>

using namespace spool;

TEST(JobIds, AreCanonicalAndSortByCreation) {
    std::vector<std::string> ids;
    for (int i = 0; i < 5000; ++i) ids.push_back(make_job_id(1'700'000'000'000 + i / 100));
    for (std::size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << i;
    std::set<std::string> unique(ids.begin(), ids.end());
    EXPECT_EQ(unique.size(), ids.size());
    for (const auto& id : ids) EXPECT_TRUE(is_valid_job_id(id)) << id;
    EXPECT_EQ(ids[0][14], '7');  // version nibble
}

TEST(JobIds, RejectsMalformed) {
    EXPECT_FALSE(is_valid_job_id(""));
    EXPECT_FALSE(is_valid_job_id("../../etc/passwd"));
    EXPECT_FALSE(is_valid_job_id("0193A6B2-0000-7000-8000-000000000000"));
}

TEST(TimeFormat, RoundTripsMilliseconds) {
    millis t = 1'764'000'790'114;
    auto s = format_iso8601(t);
    EXPECT_EQ(s, "2025-11-24T16:13:10.114Z");
    EXPECT_EQ(parse_iso8601(s), t);
}

TEST(TimeFormat, ParsesOffsetsAndRejectsGarbage) {
    EXPECT_EQ(parse_iso8601("2025-11-24T16:13:10Z"), 1'764'000'790'000);
    EXPECT_EQ(parse_iso8601("2025-11-24T18:13:10+02:00"), 1'764'000'790'000);
    EXPECT_EQ(parse_iso8601("2025-11-24 16:13:10"), 1'764'000'790'000);
    EXPECT_FALSE(parse_iso8601("yesterday"));
    EXPECT_FALSE(parse_iso8601("2025-13-01T00:00:00Z"));
    EXPECT_FALSE(parse_iso8601("2025-11-24T16:13:10Zjunk"));
    // Offsets out of range are errors, not silently folded into the time.
    EXPECT_FALSE(parse_iso8601("2025-11-24T16:13:10+99:99"));
    EXPECT_FALSE(parse_iso8601("2025-11-24T16:13:10+24:00"));
    EXPECT_FALSE(parse_iso8601("2025-11-24T16:13:10-05:60"));
    EXPECT_EQ(parse_iso8601("2025-11-24T16:13:10-23:59"), 1'764'000'790'000 + (23 * 60 + 59) * 60'000LL);
}

TEST(JobStatus, NamesRoundTrip) {
    for (int i = 0; i <= static_cast<int>(job_status::expired); ++i) {
        auto s = static_cast<job_status>(i);
        EXPECT_EQ(parse_job_status(to_string(s)), s);
    }
    EXPECT_FALSE(parse_job_status("running"));
    EXPECT_TRUE(is_terminal(job_status::failed));
    EXPECT_FALSE(is_terminal(job_status::scheduled));
}

TEST(Errors, CompareAsCodes) {
    boost::system::error_code ec = errc::timeout;
    EXPECT_EQ(ec, errc::timeout);
    EXPECT_EQ(ec.category().name(), std::string{"spool"});
    EXPECT_STREQ(to_code_name(errc::job_not_found), "job_not_found");
}

TEST(RunPolling, RunsEveryHandlerAndReturnsWhenOutOfWork) {
    for (auto spin : {std::chrono::microseconds{0}, std::chrono::microseconds{200}}) {
        boost::asio::io_context io;
        int ran = 0;
        for (int i = 0; i < 3; ++i) boost::asio::post(io, [&] { ++ran; });
        boost::asio::steady_timer t{io, std::chrono::milliseconds{5}};
        t.async_wait([&](boost::system::error_code) { ++ran; });
        EXPECT_EQ(spool::run_polling(io, spin), 4u);
        EXPECT_EQ(ran, 4);
        EXPECT_TRUE(io.stopped());
    }
}

TEST(RunPolling, ReturnsOnStopWithWorkStillPending) {
    boost::asio::io_context io;
    auto guard = boost::asio::make_work_guard(io);
    boost::asio::steady_timer t{io, std::chrono::milliseconds{2}};
    t.async_wait([&](boost::system::error_code) { io.stop(); });
    EXPECT_EQ(spool::run_polling(io, std::chrono::microseconds{100}), 1u);
}

TEST(RunPolling, ReturnsOnceDoneHoldsWithWorkStillPending) {
    for (auto spin : {std::chrono::microseconds{0}, std::chrono::microseconds{100}}) {
        boost::asio::io_context io;
        auto guard = boost::asio::make_work_guard(io);
        bool finished = false;
        boost::asio::steady_timer t{io, std::chrono::milliseconds{2}};
        t.async_wait([&](boost::system::error_code) { finished = true; });
        EXPECT_EQ(spool::run_polling(io, spin, [&] { return finished; }), 1u);
        EXPECT_TRUE(finished);
        EXPECT_FALSE(io.stopped());
    }
}

TEST(RunPolling, BlocksWhenIdleAndWakesForWorkFromAnotherThread) {
    boost::asio::io_context io;
    auto guard = boost::asio::make_work_guard(io);
    bool ran = false;
    std::thread other{[&] {
        // Past the spin budget, so the loop is blocked in the kernel by now.
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
        boost::asio::post(io, [&] {
            ran = true;
            guard.reset();
        });
    }};
    EXPECT_EQ(spool::run_polling(io, std::chrono::microseconds{50}), 1u);
    other.join();
    EXPECT_TRUE(ran);
}

namespace {
asio::awaitable<void> tick_forever() {
    asio::steady_timer t{co_await asio::this_coro::executor};
    for (;;) {
        t.expires_after(std::chrono::milliseconds{1});
        co_await t.async_wait(asio::use_awaitable);  // throws operation_aborted once cancelled
    }
}
}  // namespace

// On shutdown every `spool serve` logged "task reaper ended with an exception:
// Operation canceled" at error level: cancellation is a loop's normal end.
TEST(TaskGroup, CancelledLoopIsNotLoggedAsAnError) {
    auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
    auto logger = spool::log::get("task");
    logger->sinks().push_back(sink);
    asio::io_context io;
    {
        spool::task_group group{io.get_executor()};
        group.spawn(tick_forever(), "ticker");
        io.run_for(std::chrono::milliseconds{5});
        group.cancel();
        bool idle = false;
        asio::co_spawn(io, group.wait(std::chrono::seconds{2}), [&](std::exception_ptr, bool r) { idle = r; });
        io.run_for(std::chrono::seconds{2});
        EXPECT_TRUE(idle);
    }
    logger->sinks().pop_back();
    for (const auto& line : sink->last_formatted()) EXPECT_EQ(line.find("exception"), std::string::npos) << line;
}

TEST(JobIds, TaggedIdsCarryTheirTagAndStayWellFormedAndOrdered) {
    std::vector<std::string> ids;
    for (int i = 0; i < 2000; ++i) ids.push_back(make_job_id(1'700'000'000'000 + i / 100, 42));
    for (const auto& id : ids) {
        EXPECT_TRUE(is_valid_job_id(id)) << id;
        EXPECT_EQ(id[14], '7');  // version 7
        ASSERT_TRUE(job_id_tag(id).has_value()) << id;
        EXPECT_EQ(*job_id_tag(id), 42);
    }
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    EXPECT_EQ(*job_id_tag(make_job_id(1'700'000'000'000, 65535)), 65535);
    EXPECT_FALSE(job_id_tag(make_job_id(1'700'000'000'000)).has_value());  // untagged
    EXPECT_FALSE(job_id_tag("01a23abe-35b4-7108-ac46-a50af116fd96").has_value());
    EXPECT_FALSE(job_id_tag("not-an-id").has_value());
}
