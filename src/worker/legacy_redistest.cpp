// src/worker/legacy_redistest.cpp
// A Redis written by the previous version (tests/data/legacy-v1.rdb, made by
// tests/data/make-legacy-v1.sh with the commit before records carried their
// history): its jobs are read, resumed and finished by this version, none lost.
// In it: lq queued (priority 5); lc completed (result {"legacy":"done"}); lp
// completed with 3 progress events; lf failed; la in progress on a worker that
// was killed (its lease long expired). Events are per-job streams there.
// And tests/data/legacy-v2.rdb (tests/data/make-legacy-v2.sh, the commit before
// records were kept compact: JSON history entries, ~300-byte payloads and
// results in one field): mq queued, mc and mp completed, ma in progress on a
// killed worker. And tests/data/legacy-v3.rdb (tests/data/make-legacy-v3.sh, the
// commit before the job indexes were streams: the `all` and `completed` sets,
// piece counts in the records): sq queued, sc and sp completed, sa in progress on a
// killed worker.
#include <spool/worker.hpp>

#include "redis/connection.hpp"
#include "store/broker.hpp"
#include "testing/redis_server.hpp"
#include "testing/run_coro.hpp"
#include "util/clock.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <thread>

using namespace spool;
using namespace std::chrono_literals;
using spool::testing::run_coro;
using spool::testing::wait_until;

namespace {

const std::string lq = "01a23abe-3598-70fc-8119-a9b33e86807c";
const std::string lc = "01a23abe-35a1-708b-a7e9-3b68fe8f1c69";
const std::string lp = "01a23abe-35a7-7067-99af-0cb323f63c51";
const std::string lf = "01a23abe-35ae-7018-85a1-bc3ec7a86a43";
const std::string la = "01a23abe-35b4-7108-ac46-a50af116fd96";

const std::string mq = "01a23d0e-8098-7080-8a0b-3b735b0d0001";
const std::string mc = "01a23d0e-80a1-718f-8266-22655b0d0002";
const std::string mp = "01a23d0e-80a8-70e2-9a38-a5865b0d0003";
const std::string ma = "01a23d0e-80ae-70c0-8a67-5d1d5b0d0004";
const std::string sq = "01a250b9-e308-713b-9ae9-a5d15b0d0001";
const std::string sc = "01a250b9-e314-71d4-9d29-97965b0d0002";
const std::string sp = "01a250b9-e31e-71ca-9d97-1e645b0d0003";
const std::string sa = "01a250b9-e328-70d7-8ed5-03cc5b0d0004";
const std::string pad(280, 'v');

std::string data_file(const char* name = "legacy-v1.rdb") {
    const char* src = std::getenv("SPOOL_SOURCE_DIR");
    return std::string{src ? src : "."} + "/tests/data/" + name;
}

std::vector<std::string> statuses(const std::vector<job_event>& evs) {
    std::vector<std::string> out;
    for (const auto& e : evs) {
        auto pos = e.data.find("\"status\":\"");
        out.push_back(e.type == "progress" ? "progress"
                                           : e.data.substr(pos + 10, e.data.find('"', pos + 10) - pos - 10));
    }
    return out;
}

class LegacyTest : public ::testing::Test {
protected:
    virtual const char* dump() const { return "legacy-v1.rdb"; }
    void SetUp() override {
        ASSERT_TRUE(std::filesystem::exists(data_file(dump()))) << data_file(dump());
        redis_ = std::make_unique<spool::testing::redis_server>();
        redis_->stop();
        std::filesystem::copy_file(data_file(dump()), redis_->dir() + "/dump.rdb");
        redis_->start();
        conn_ = redis::connection::create(ctx_.get_executor(), redis::parse_url(redis_->url()).value());
        conn_->start();
        broker_ = std::make_unique<store::broker>(*conn_, store::broker_options{});
    }
    void TearDown() override {
        conn_->stop();
        ctx_.run_for(50ms);
    }
    job_record get(const std::string& id) { return run_coro(ctx_, broker_->get(id)).value(); }
    // Runs a worker with `handlers` (queue -> handler) until every job in `ids`
    // has completed, or 10 s; true when they did.
    bool run_worker_until_completed(std::vector<std::pair<std::string, handler>> handlers,
                                    std::vector<std::string> ids) {
        asio::io_context io;
        worker_options o;
        o.redis_url = redis_->url();
        o.concurrency = 4;
        worker w{io, o};
        for (auto& [queue, h] : handlers) w.handle(queue, std::move(h));
        w.start();
        std::thread t{[&] { io.run(); }};
        bool done = wait_until(
            [&] {
                for (const auto& id : ids)
                    if (get(id).status != job_status::completed) return false;
                return true;
            },
            10s);
        asio::co_spawn(io, w.stop(1s), [&](std::exception_ptr) { io.stop(); });
        t.join();
        return done;
    }
    std::vector<job_event> events(const std::string& id, std::string after = "0") {
        return run_coro(ctx_, broker_->events(id, std::move(after), 1000)).value();
    }

    std::unique_ptr<spool::testing::redis_server> redis_;
    asio::io_context ctx_;
    std::shared_ptr<redis::connection> conn_;
    std::unique_ptr<store::broker> broker_;
};

class CompactTest : public LegacyTest {
protected:
    const char* dump() const override { return "legacy-v2.rdb"; }
};

class SetIndexTest : public LegacyTest {
protected:
    const char* dump() const override { return "legacy-v3.rdb"; }
    std::vector<std::string> listed(std::optional<job_status> status) {
        store::list_query q;
        q.status = status;
        std::vector<std::string> out;
        for (const auto& j : run_coro(ctx_, broker_->list(q)).value().jobs) out.push_back(j.id);
        return out;
    }
    std::int64_t completed_count() {
        std::int64_t n = 0;
        for (const auto& q : run_coro(ctx_, broker_->queues()).value()) n += q.completed;
        return n;
    }
};

asio::awaitable<std::string> echo(job_context& job) { co_return job.payload(); }
asio::awaitable<std::string> ok(job_context&) { co_return std::string{"{\"again\":true}"}; }

}  // namespace

TEST_F(LegacyTest, RecordsResultsAndEventsOfThePreviousVersionRead) {
    auto q = get(lq);
    EXPECT_EQ(q.status, job_status::queued);
    EXPECT_EQ(q.priority, 5);
    EXPECT_EQ(statuses(events(lq)), (std::vector<std::string>{"queued"}));

    EXPECT_EQ(get(lc).status, job_status::completed);
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(lc)).value().data, R"({"legacy":"done"})");
    auto c = events(lc);
    EXPECT_EQ(statuses(c), (std::vector<std::string>{"queued", "in_progress", "completed"}));
    // Resuming with one of that version's ids gives what followed it.
    EXPECT_EQ(statuses(events(lc, c[0].id)), (std::vector<std::string>{"in_progress", "completed"}));
    EXPECT_TRUE(events(lc, c[2].id).empty());
    auto last = run_coro(ctx_, broker_->last_event(lc)).value();
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->id, c[2].id);

    EXPECT_EQ(statuses(events(lp)), (std::vector<std::string>{"queued", "in_progress", "progress", "progress",
                                                              "progress", "completed"}));
    EXPECT_EQ(get(lf).status, job_status::failed);
    EXPECT_EQ(get(la).status, job_status::in_progress);
}

TEST_F(LegacyTest, UnfinishedJobsOfThePreviousVersionRunToCompletion) {
    // The killed worker's job comes back (its lease ran out long ago); the dead
    // job is retried; the queued one just runs.
    EXPECT_EQ(run_coro(ctx_, broker_->reclaim_expired("la", now_millis())).value(), 1u);
    ASSERT_TRUE(run_coro(ctx_, broker_->retry(lf, now_millis())).has_value());

    ASSERT_TRUE(run_worker_until_completed(
        {{"lq", handler::async(echo)}, {"la", handler::async(ok)}, {"lf", handler::async(ok)}}, {lq, la, lf}));

    EXPECT_EQ(run_coro(ctx_, broker_->get_result(lq)).value().data, R"({"n":2})");
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(la)).value().data, R"({"again":true})");
    EXPECT_EQ(get(la).attempts, 2);
    // The whole story, old events first: queued, started, progress, taken back
    // when its lease expired, run again, completed.
    auto a = statuses(events(la));
    ASSERT_GE(a.size(), 5u);
    EXPECT_EQ(a.front(), "queued");
    EXPECT_EQ(a[1], "in_progress");
    EXPECT_EQ(a[a.size() - 3], "queued");
    EXPECT_EQ(a[a.size() - 2], "in_progress");
    EXPECT_EQ(a.back(), "completed");
    auto f = statuses(events(lf));
    EXPECT_EQ(f.front(), "queued");
    EXPECT_EQ(f.back(), "completed");
    EXPECT_NE(std::find(f.begin(), f.end(), "failed"), f.end());
    auto last = run_coro(ctx_, broker_->last_event(la)).value();
    ASSERT_TRUE(last.has_value());
    EXPECT_NE(last->data.find("\"completed\""), std::string::npos);
}

TEST_F(CompactTest, RecordsOfTheVersionBeforeCompactRecordsReadAndFinish) {
    EXPECT_EQ(get(mq).payload, R"({"n":2,"pad":")" + pad + R"("})");
    EXPECT_EQ(get(mc).status, job_status::completed);
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(mc)).value().data, R"({"old":"done","pad":")" + pad + R"("})");
    auto c = events(mc);
    EXPECT_EQ(statuses(c), (std::vector<std::string>{"queued", "in_progress", "completed"}));
    EXPECT_NE(c[1].data.find(R"("worker_id":"oldworker")"), std::string::npos);
    EXPECT_EQ(statuses(events(mp)), (std::vector<std::string>{"queued", "in_progress", "progress", "progress",
                                                              "progress", "completed"}));
    EXPECT_EQ(get(ma).status, job_status::in_progress);

    // The killed worker's job comes back and, with the queued one, runs to the end
    // under this version: its history mixes the old JSON entries and compact ones.
    EXPECT_EQ(run_coro(ctx_, broker_->reclaim_expired("ma", now_millis())).value(), 1u);
    ASSERT_TRUE(run_worker_until_completed({{"mq", handler::async(echo)}, {"ma", handler::async(echo)}}, {mq, ma}));
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(mq)).value().data, R"({"n":2,"pad":")" + pad + R"("})");
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(ma)).value().data,
              R"({"duration_ms":600000,"steps":600,"pad":")" + pad + R"("})");
    auto a = events(ma);
    EXPECT_EQ(statuses(a), (std::vector<std::string>{"queued", "in_progress", "progress", "progress", "queued",
                                                     "in_progress", "completed"}));
    EXPECT_NE(a[1].data.find(R"("attempt":1,"worker_id":"oldworker")"), std::string::npos);
    EXPECT_NE(a[5].data.find(R"("attempt":2,"worker_id":")"), std::string::npos);
    EXPECT_EQ(get(ma).attempts, 2);
}

TEST_F(SetIndexTest, JobsOfTheVersionBeforeTheIndexStreamsAreListedRunAndPurged) {
    // Read as that version wrote them: payloads and results in pieces with counts,
    // listed and counted from the `all` and `completed` sets.
    EXPECT_EQ(get(sq).payload, R"({"n":2,"pad":")" + pad + R"("})");
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(sc)).value().data, R"({"old":"done","pad":")" + pad + R"("})");
    EXPECT_EQ(get(sc).result_size_bytes, 303u);
    EXPECT_EQ(get(sc).attempts, 1);
    EXPECT_EQ(statuses(events(sp)), (std::vector<std::string>{"queued", "in_progress", "progress", "progress",
                                                              "progress", "completed"}));
    EXPECT_EQ(listed(std::nullopt), (std::vector<std::string>{sa, sp, sc, sq}));  // newest first, across queues
    EXPECT_EQ(listed(job_status::completed), (std::vector<std::string>{sp, sc}));
    EXPECT_EQ(completed_count(), 2);

    // The killed worker's job comes back and, with the queued one, runs under this
    // version (its payload whole: the start reads the count), into the `done` index.
    EXPECT_EQ(run_coro(ctx_, broker_->reclaim_expired("sa", now_millis())).value(), 1u);
    ASSERT_TRUE(run_worker_until_completed({{"sq", handler::async(echo)}, {"sa", handler::async(echo)}}, {sq, sa}));
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(sq)).value().data, R"({"n":2,"pad":")" + pad + R"("})");
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(sa)).value().data,
              R"({"duration_ms":600000,"steps":600,"pad":")" + pad + R"("})");
    EXPECT_EQ(get(sa).attempts, 2);
    auto completed = listed(job_status::completed);
    ASSERT_EQ(completed.size(), 4u);
    EXPECT_EQ((std::set<std::string>{completed[0], completed[1]}), (std::set<std::string>{sq, sa}));
    EXPECT_EQ(completed[2], sp);
    EXPECT_EQ(completed[3], sc);
    EXPECT_EQ(completed_count(), 4);

    // Past retention every one goes, from the sets and from the streams.
    const millis later = now_millis() + std::chrono::milliseconds{broker_->options().retention}.count() + 86'400'000;
    std::size_t purged = 0;
    for (const auto& q : {"sq", "sc", "sp", "sa"}) purged += run_coro(ctx_, broker_->trim(q, later)).value();
    EXPECT_EQ(purged, 4u);
    EXPECT_TRUE(listed(std::nullopt).empty());
    EXPECT_TRUE(listed(job_status::completed).empty());
    EXPECT_EQ(completed_count(), 0);
    EXPECT_EQ(run_coro(ctx_, broker_->get(sc)).error(), errc::job_not_found);
}
