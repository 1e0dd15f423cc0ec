// src/maintenance/maintenance_redistest.cpp
// The serve-side loops against a real redis-server, on the real clock.
#include "maintenance/maintenance.hpp"

#include "testing/redis_server.hpp"
#include "testing/run_coro.hpp"
#include "util/clock.hpp"

#include <gtest/gtest.h>

using namespace spool;
using namespace std::chrono_literals;

namespace {

class MaintenanceTest : public spool::testing::RedisTest {
protected:
    void SetUp() override {
        RedisTest::SetUp();
        conn_ = redis::connection::create(ctx_.get_executor(), redis::parse_url(redis().url()).value());
        conn_->start();
        broker_ = std::make_unique<store::broker>(*conn_, store::broker_options{});
    }
    void TearDown() override {
        conn_->stop();
        ctx_.run_for(50ms);
    }
    // Runs the io_context until `pred` holds or `timeout` passes.
    bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            ctx_.run_for(20ms);
            if (pred()) return true;
        }
        return false;
    }

    asio::io_context ctx_;
    std::shared_ptr<redis::connection> conn_;
    std::unique_ptr<store::broker> broker_;
};

}  // namespace

TEST_F(MaintenanceTest, LoopsPromoteDueJobsAndReclaimExpiredLeases) {
    job_spec delayed;
    delayed.queue = "q";
    delayed.run_at = now_millis() + 200;
    auto later = spool::testing::run_coro(ctx_, broker_->submit(delayed, now_millis())).value().id;
    job_spec now_job;
    now_job.queue = "q";
    auto orphan = spool::testing::run_coro(ctx_, broker_->submit(now_job, now_millis())).value().id;
    store::claim_request req;
    req.queue = "q";
    req.worker_id = "dead-worker";
    req.lease = 150ms;
    auto claimed = spool::testing::run_coro(ctx_, broker_->claim(req, now_millis())).value();
    ASSERT_EQ(claimed.jobs.size(), 1u);
    ASSERT_EQ(claimed.jobs[0].id, orphan);

    task_group group{ctx_.get_executor()};
    maintenance::options o;
    o.promote_every = 20ms;
    o.reap_every = 20ms;
    maintenance::loops loops{*broker_, o};
    loops.spawn(group);
    EXPECT_TRUE(run_until([&] { return redis().hget("spool:{q:q}:job:" + later, "status") == "queued"; }));
    EXPECT_TRUE(run_until([&] {
        return redis().hget("spool:{q:q}:job:" + orphan, "status") == "queued" &&
               redis().leased("spool:{q:q}:active") == 0;
    }));
    EXPECT_EQ(redis().zcard("spool:{q:q}:queued"), 2);
    group.cancel();
    EXPECT_TRUE(run_until([&] { return group.size() == 0; }));
}
