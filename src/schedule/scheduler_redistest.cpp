// src/schedule/scheduler_redistest.cpp
// The schedule scripts and the scheduler loop against a real redis-server:
// one job per tick however many callers race for it, overlap, pause, version
// checks, and catch-up after a long gap on a manual clock.
#include "schedule/scheduler.hpp"
#include "store/broker.hpp"
#include "store/keys.hpp"
#include "store/schedules.hpp"
#include "testing/redis_server.hpp"
#include "testing/run_coro.hpp"

#include <spool/error.hpp>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <gtest/gtest.h>

#include <set>

using namespace spool;
using namespace spool::schedule;
using spool::testing::run_coro;

namespace {

class SchedulerTest : public spool::testing::RedisTest {
protected:
    void SetUp() override {
        RedisTest::SetUp();
        auto opts = redis::parse_url(redis().url()).value();
        for (int i = 0; i < 2; ++i) {
            conns_[i] = redis::connection::create(ctx_.get_executor(), opts);
            conns_[i]->start();
            store::broker_options bo;
            bo.clock = &clock_;
            brokers_[i] = std::make_unique<store::broker>(*conns_[i], bo);
            stores_[i] = std::make_unique<store::schedule_store>(*conns_[i], *brokers_[i]);
        }
    }
    void TearDown() override {
        for (auto& c : conns_) c->stop();
        ctx_.run_for(std::chrono::milliseconds{50});
    }

    template <class T>
    T run(asio::awaitable<T> aw) {
        return run_coro(ctx_, std::move(aw));
    }

    definition def(const std::string& body) {
        auto d = parse_definition(boost::json::parse(body), definition_defaults{});
        EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().message);
        return d ? *d : definition{};
    }
    void add(const std::string& body, int which = 0) {
        auto r = run(upsert(*stores_[which], def(body), clock_.now()));
        ASSERT_TRUE(r.has_value()) << r.error().message();
    }
    store::schedule_row row(const std::string& name) {
        auto r = run(stores_[0]->load(name));
        EXPECT_TRUE(r.has_value() && r->has_value()) << name;
        return r && *r ? **r : store::schedule_row{};
    }
    // The tick request a scheduler holding `r` would send.
    store::fire_request tick_of(const store::schedule_row& r, millis new_next) {
        auto d = definition_of(r).value();
        store::fire_request req;
        req.name = r.name;
        req.queue = r.queue;
        req.version = r.version;
        req.expected_next = r.next;
        req.new_next = new_next;
        req.tick = r.next;
        req.overlap_skip = d.overlap == overlap_policy::skip;
        req.expected_last_job = r.last_job;
        req.job = job_of(d);
        return req;
    }
    store::fire_outcome fire(const store::fire_request& req, int which = 0) {
        auto r = run(stores_[which]->fire(req, clock_.now()));
        EXPECT_TRUE(r.has_value()) << r.error().message();
        return r ? *r : store::fire_outcome{};
    }
    long long queued(const std::string& q) { return redis().zcard("spool:{q:" + q + "}:queued"); }
    // Runs a scheduler loop on store 0 until `done` holds (or 5 s pass).
    void run_scheduler_until(const std::function<bool()>& done) {
        task_group group{ctx_.get_executor()};
        scheduler s{ctx_.get_executor(), *stores_[0], nullptr, clock_};
        s.spawn(group);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
        while (!done() && std::chrono::steady_clock::now() < deadline)
            ctx_.run_for(std::chrono::milliseconds{20});
        group.cancel();
        run_coro(ctx_, group.wait(std::chrono::seconds{2}));
    }

    asio::io_context ctx_;
    manual_clock clock_{1'750'000'000'500};  // half a second past a whole second
    std::shared_ptr<redis::connection> conns_[2];
    std::unique_ptr<store::broker> brokers_[2];
    std::unique_ptr<store::schedule_store> stores_[2];
};

}  // namespace

TEST_F(SchedulerTest, RacingCallersMakeOneJobPerTick) {
    add(R"({"name":"tick","cron":"* * * * * *","queue":"sched","payload":{"n":1},"priority":5})");
    auto r = row("tick");
    EXPECT_EQ(r.next, 1'750'000'001'000);
    clock_.set(r.next + 3);
    auto req = tick_of(r, r.next + 1000);
    auto a = fire(req, 0);
    auto b = fire(req, 1);
    EXPECT_EQ(a.status, store::fire_status::fired);
    EXPECT_EQ(b.status, store::fire_status::stale);
    EXPECT_EQ(b.next, r.next + 1000);
    EXPECT_EQ(queued("sched"), 1);
    // The job is an ordinary one: readable, claimable, with the schedule's options.
    auto job = run(brokers_[0]->get(a.job_id));
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->status, job_status::queued);
    EXPECT_EQ(job->queue, "sched");
    EXPECT_EQ(job->priority, 5);
    EXPECT_EQ(job->created_at, clock_.now());
    EXPECT_EQ(boost::json::parse(job->payload), boost::json::parse(R"({"n":1})"));
    EXPECT_EQ(redis().hget("spool:{q:sched}:meta", "submitted"), "1");
    store::claim_request cr;
    cr.queue = "sched";
    cr.worker_id = "w";
    auto claimed = run(brokers_[0]->claim(cr, clock_.now()));
    ASSERT_TRUE(claimed.has_value());
    ASSERT_EQ(claimed->jobs.size(), 1u);
    EXPECT_EQ(claimed->jobs[0].id, a.job_id);
    auto after = row("tick");
    EXPECT_EQ(after.last_job, a.job_id);
    EXPECT_EQ(after.last_outcome, "fired");
    EXPECT_EQ(after.runs, 1);
    EXPECT_EQ(after.next, r.next + 1000);
}

TEST_F(SchedulerTest, OverlapSkipWaitsForThePreviousJob) {
    add(R"({"name":"slow","cron":"* * * * * *","queue":"sched","overlap":"skip"})");
    auto r = row("slow");
    clock_.set(r.next);
    auto first = fire(tick_of(r, r.next + 1000));
    ASSERT_EQ(first.status, store::fire_status::fired);
    r = row("slow");
    clock_.set(r.next);
    auto second = fire(tick_of(r, r.next + 1000));
    EXPECT_EQ(second.status, store::fire_status::skipped);
    EXPECT_EQ(second.job_id, first.job_id);
    EXPECT_EQ(queued("sched"), 1);
    // The previous job finished: the next tick makes one again.
    redis().cmd({"HSET", "spool:{q:sched}:job:" + first.job_id, "status", "completed"});
    r = row("slow");
    EXPECT_EQ(r.skipped, 1);
    EXPECT_EQ(r.last_outcome, "skipped");
    clock_.set(r.next);
    auto third = fire(tick_of(r, r.next + 1000));
    EXPECT_EQ(third.status, store::fire_status::fired);
    EXPECT_EQ(queued("sched"), 2);
}

TEST_F(SchedulerTest, PausedChangedAndMissingSchedulesMakeNoJob) {
    add(R"({"name":"p","cron":"* * * * * *","queue":"sched"})");
    auto r = row("p");
    clock_.set(r.next);
    ASSERT_TRUE(run(set_paused(*stores_[0], "p", true, clock_.now())).value());
    EXPECT_EQ(fire(tick_of(r, r.next + 1000)).status, store::fire_status::paused);
    // A trigger still makes a job while paused.
    auto t = run(trigger(*stores_[0], "p", clock_.now()));
    ASSERT_TRUE(t.has_value() && t->has_value());
    EXPECT_EQ(queued("sched"), 1);
    EXPECT_EQ(row("p").last_outcome, "triggered");
    // Resume restarts at the first tick after now (no catching up the pause).
    clock_.advance(std::chrono::seconds{10});
    ASSERT_TRUE(run(set_paused(*stores_[0], "p", false, clock_.now())).value());
    auto resumed = row("p");
    EXPECT_FALSE(resumed.paused);
    EXPECT_GT(resumed.next, clock_.now());
    // A scheduler holding the old definition version is told to re-read.
    add(R"({"name":"p","cron":"* * * * * *","queue":"sched","payload":{"v":2}})", 1);
    EXPECT_EQ(fire(tick_of(resumed, resumed.next + 1000)).status, store::fire_status::changed);
    EXPECT_EQ(row("p").next, resumed.next);  // same timing: the next fire time is kept
    ASSERT_TRUE(run(stores_[0]->remove("p")).value());
    EXPECT_EQ(fire(tick_of(resumed, resumed.next + 1000)).status, store::fire_status::missing);
    EXPECT_FALSE(run(trigger(*stores_[0], "p", clock_.now())).value().has_value());
    EXPECT_FALSE(run(stores_[0]->remove("p")).value());
}

TEST_F(SchedulerTest, UpsertKeepsTheNextFireTimeUnlessTheTimingChanged) {
    add(R"({"name":"u","cron":"0 * * * *","queue":"sched"})");
    auto first = row("u").next;
    clock_.advance(std::chrono::minutes{5});
    add(R"({"name":"u","cron":"0 * * * *","queue":"sched","priority":3})");
    EXPECT_EQ(row("u").next, first);
    add(R"({"name":"u","cron":"* * * * *","queue":"sched"})");
    EXPECT_LT(row("u").next, first);
    // Moving to another queue keeps it listed once, under the new queue.
    add(R"({"name":"u","cron":"* * * * *","queue":"other"})");
    auto all = run(stores_[0]->load_all()).value();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].queue, "other");
    EXPECT_FALSE(redis().exists("spool:{q:sched}:schedules"));
}

TEST_F(SchedulerTest, CatchUpNoneMakesOneJobAfterAGap) {
    add(R"({"name":"n","cron":"* * * * * *","queue":"gap"})");
    auto start = row("n").next;
    clock_.set(start + 10'500);  // ticks start .. start+10s were missed
    run_scheduler_until([&] { return queued("gap") >= 1 && row("n").next > clock_.now(); });
    EXPECT_EQ(queued("gap"), 1);
    EXPECT_EQ(row("n").next, start + 11'000);
}

TEST_F(SchedulerTest, CatchUpAllMakesOneJobPerMissedTickUpToTheLimit) {
    add(R"({"name":"a","cron":"@every 1s","queue":"gap","catch_up":"all"})");
    add(R"({"name":"b","cron":"* * * * * *","queue":"gap2","catch_up":"all","catch_up_limit":3})");
    auto start = row("a").next;
    clock_.set(start + 9'500);  // 10 ticks missed: start .. start+9s
    run_scheduler_until([&] { return row("a").next > clock_.now() && row("b").next > clock_.now(); });
    EXPECT_EQ(queued("gap"), 10);
    EXPECT_EQ(queued("gap2"), 3);
    EXPECT_EQ(row("a").next, start + 10'000);
    EXPECT_EQ(row("b").last_tick, start + 9'000);
}

TEST_F(SchedulerTest, ReplicatedQueueReportsAnUnconfirmedJobAndNeverRepeatsTheTick) {
    // durability: replicated on a Redis without replicas: WAIT confirms none.
    store::broker_options bo;
    bo.clock = &clock_;
    bo.replicated_queues = {"safe"};
    bo.replica_timeout = std::chrono::milliseconds{50};
    store::broker b{*conns_[0], bo};
    store::schedule_store st{*conns_[0], b};
    auto made = run(upsert(st, def(R"({"name":"r","cron":"* * * * * *","queue":"safe"})"), clock_.now()));
    ASSERT_TRUE(made.has_value());
    auto r = row("r");
    clock_.set(r.next);
    auto req = tick_of(r, r.next + 1000);
    auto first = run(st.fire(req, clock_.now()));
    ASSERT_FALSE(first.has_value());
    EXPECT_EQ(first.error(), errc::not_replicated);
    EXPECT_EQ(queued("safe"), 1);  // the job is on the master
    auto again = run(st.fire(req, clock_.now()));
    ASSERT_TRUE(again.has_value()) << again.error().message();
    EXPECT_EQ(again->status, store::fire_status::stale);
    EXPECT_EQ(queued("safe"), 1);
}

TEST_F(SchedulerTest, ConfigSchedulesLeaveWithTheConfigAndApiOnesStay) {
    const std::string a = R"({"name":"cfg-a","cron":"* * * * *","queue":"sched"})";
    const std::string b = R"({"name":"cfg-b","cron":"0 * * * *","queue":"sched"})";
    run(upsert_all(*stores_[0], {a, b}));
    add(R"({"name":"api-c","cron":"0 0 * * *","queue":"sched"})");
    EXPECT_TRUE(definition_of(row("cfg-a")).value().from_config);
    EXPECT_NE(row("cfg-b").definition.find(R"("source":"config")"), std::string::npos);
    EXPECT_NE(row("api-c").definition.find(R"("source":"api")"), std::string::npos);

    // The next start's config drops cfg-b; a broken entry for cfg-a keeps cfg-a.
    run(upsert_all(*stores_[0], {R"({"name":"cfg-a","cron":"not a cron"})"}));
    auto all = run(stores_[0]->load_all()).value();
    std::vector<std::string> names;
    for (const auto& r : all) names.push_back(r.name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"api-c", "cfg-a"}));
    EXPECT_EQ(redis().cmd_int({"ZCARD", "spool:{q:sched}:schedule_next"}), 2);

    // A config without schedules removes the rest of the config's, not the API's.
    run(upsert_all(*stores_[0], {}));
    all = run(stores_[0]->load_all()).value();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].name, "api-c");
}
