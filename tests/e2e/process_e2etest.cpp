// tests/e2e/process_e2etest.cpp
// Real processes: `spool worker` children killed with -9 or stopped with SIGTERM,
// and `spool serve` with its embedded Redis driven over HTTP.
#include "app/http_client.hpp"
#include "redis/connection.hpp"
#include "store/broker.hpp"
#include "testing/redis_server.hpp"
#include "testing/spool_process.hpp"
#include "testing/run_coro.hpp"
#include "util/clock.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <fstream>
#include <sstream>

using namespace spool;
using namespace std::chrono_literals;
using spool::testing::run_coro;
using spool::testing::wait_until;

namespace {

using process = spool::testing::spool_process;
using spool::testing::spool_binary;



class ProcessTest : public spool::testing::RedisTest {
protected:
    void SetUp() override {
        RedisTest::SetUp();
        dir_ = redis().dir() + "/e2e";
        std::filesystem::create_directories(dir_);
        conn_ = redis::connection::create(ctx_.get_executor(), redis::parse_url(redis().url()).value());
        conn_->start();
        broker_ = std::make_unique<store::broker>(*conn_, store::broker_options{});
        std::ofstream cfg{dir_ + "/spool.yaml"};
        cfg << "queues:\n"
               "  sim:\n"
               "    handler: simulation\n"
               "    lease_seconds: 2\n"
               "    backoff_base_ms: 10\n"
               "  bulk:\n"
               "    handler: echo\n"
               "    lease_seconds: 2\n"
               "worker:\n"
               "  grace_seconds: 1\n";
    }
    void TearDown() override {
        conn_->stop();
        ctx_.run_for(50ms);
    }
    std::vector<std::string> worker_args(const std::string& id) {
        return {"worker", "--redis", redis().url(), "--config", dir_ + "/spool.yaml", "--id", id, "--concurrency", "2"};
    }
    std::string submit(const std::string& payload) {
        job_spec s;
        s.queue = "sim";
        s.payload = payload;
        return run_coro(ctx_, broker_->submit(s, now_millis())).value().id;
    }
    job_record get(const std::string& id) { return run_coro(ctx_, broker_->get(id)).value(); }

    std::string dir_;
    asio::io_context ctx_;
    std::shared_ptr<redis::connection> conn_;
    std::unique_ptr<store::broker> broker_;
};

}  // namespace

TEST_F(ProcessTest, KillNineMidJobLetsAnotherWorkerFinishIt) {
    process a{worker_args("wa"), dir_ + "/wa.log"};
    process b{worker_args("wb"), dir_ + "/wb.log"};
    auto id = submit(R"({"duration_ms":1500,"steps":5})");
    ASSERT_TRUE(wait_until([&] { return get(id).status == job_status::in_progress; }, 10s));
    auto first = get(id).worker_id;
    ASSERT_TRUE(first == "wa" || first == "wb") << first;
    (first == "wa" ? a : b).signal(SIGKILL);
    ASSERT_TRUE(wait_until([&] { return get(id).status == job_status::completed; }, 20s));
    auto rec = get(id);
    EXPECT_EQ(rec.attempts, 2);
    EXPECT_NE(rec.worker_id, first);
    EXPECT_EQ(redis().leased("spool:{q:sim}:active"), 0);
}

TEST_F(ProcessTest, SigtermHandsRunningJobsBackAndExitsZero) {
    process w{worker_args("wt"), dir_ + "/wt.log"};
    auto id = submit(R"({"duration_ms":60000,"steps":60})");
    ASSERT_TRUE(wait_until([&] { return get(id).status == job_status::in_progress; }, 10s));
    w.signal(SIGTERM);
    EXPECT_EQ(w.wait_exit(15s), 0);
    auto rec = get(id);
    EXPECT_EQ(rec.status, job_status::queued);
    EXPECT_EQ(rec.attempts, 0);
    EXPECT_EQ(redis().leased("spool:{q:sim}:active"), 0);
}

TEST_F(ProcessTest, ServeWithEmbeddedRedisRunsAJobOverHttp) {
    auto port = spool::testing::free_port();
    process serve{{"serve", "--port", std::to_string(port), "--data-dir", dir_ + "/data", "--workers", "1"},
                  dir_ + "/serve.log"};
    cli::http_client http{cli::parse_server_url("http://127.0.0.1:" + std::to_string(port)).value(), ""};
    ASSERT_TRUE(wait_until(
        [&] {
            auto r = http.request(boost::beast::http::verb::get, "/health");
            return r && r->status == 200;
        },
        20s));
    auto sub = http.request(boost::beast::http::verb::post, "/api/jobs",
                            R"({"queue":"simulation","payload":{"duration_ms":100,"steps":2}})");
    ASSERT_TRUE(sub.has_value());
    ASSERT_EQ(sub->status, 201u) << sub->body;
    auto id = std::string{boost::json::parse(sub->body).at("job_id").as_string()};
    ASSERT_TRUE(wait_until(
        [&] {
            auto r = http.request(boost::beast::http::verb::get, "/api/jobs/" + id);
            return r && r->status == 200 && r->body.find("\"completed\"") != std::string::npos;
        },
        20s));
    auto result = http.request(boost::beast::http::verb::get, "/api/jobs/" + id + "/result");
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->status, 200u);
    EXPECT_NE(result->body.find("\"simulated\":true"), std::string::npos);
    auto bad = http.request(boost::beast::http::verb::post, "/api/jobs", "{not json");
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(bad->status, 400u);
    serve.signal(SIGTERM);
    EXPECT_EQ(serve.wait_exit(30s), 0);
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/data"));
}

TEST_F(ProcessTest, ThreeWorkersKilledAtRandomStillCompleteEveryJobExactlyOnce) {
    constexpr int jobs = 5000;
    std::vector<std::unique_ptr<process>> workers;
    for (int i = 0; i < 3; ++i)
        workers.push_back(std::make_unique<process>(worker_args("k" + std::to_string(i)), dir_ + "/k.log"));
    std::vector<job_spec> specs(jobs);
    for (int i = 0; i < jobs; ++i) {
        specs[i].queue = "bulk";
        specs[i].payload = "{\"i\":" + std::to_string(i) + "}";
    }
    auto submitted = run_coro(ctx_, broker_->submit_many(specs, now_millis()), 30s).value();
    ASSERT_EQ(submitted.size(), static_cast<std::size_t>(jobs));
    // Kill a worker with -9 every time another 1,000 jobs complete, and start a new one.
    std::mt19937 rng{42};
    for (int round = 1; round <= 3; ++round) {
        ASSERT_TRUE(wait_until([&] { return redis().cmd_int({"HGET", "spool:{q:bulk}:meta", "done"}) >= round * 1000; }, 60s));
        auto victim = rng() % workers.size();
        workers[victim]->signal(SIGKILL);
        workers[victim]->wait_exit(5s);
        workers[victim] = std::make_unique<process>(worker_args("r" + std::to_string(round)), dir_ + "/r.log");
    }
    ASSERT_TRUE(wait_until([&] { return redis().cmd_int({"HGET", "spool:{q:bulk}:meta", "done"}) == jobs; }, 90s));
    EXPECT_EQ(redis().cmd_int({"HGET", "spool:{q:bulk}:meta", "completed"}), jobs);  // one completion each
    EXPECT_EQ(redis().zcard("spool:{q:bulk}:queued"), 0);
    EXPECT_EQ(redis().leased("spool:{q:bulk}:active"), 0);
    EXPECT_EQ(redis().zcard("spool:{q:bulk}:failed"), 0);
    for (int i = 0; i < jobs; i += 499) {
        auto id = submitted[i].value().id;
        EXPECT_EQ(run_coro(ctx_, broker_->get_result(id)).value().data, "{\"i\":" + std::to_string(i) + "}");
    }
}

// Regression: with every slot of the process taken by one queue's jobs, work
// arriving on another queue waited for a slot of its own queue that never came
// (the finishing job woke only its own queue's claimer), so that queue stopped
// being served for good.
TEST_F(ProcessTest, SlotsFullOnOneQueueDoNotStopServingAnother) {
    for (const char* concurrency : {"1", "2"}) {
        SCOPED_TRACE(std::string{"concurrency "} + concurrency);
        auto args = worker_args(std::string{"slots"} + concurrency);
        args.back() = concurrency;
        process w{args, dir_ + "/slots" + concurrency + ".log"};
        std::vector<std::string> sims;
        for (int i = 0; i < 2; ++i) sims.push_back(submit(R"({"duration_ms":600,"steps":1})"));
        // Every slot busy with `sim` jobs before the other queue gets work.
        auto busy = std::atoi(concurrency);
        ASSERT_TRUE(wait_until(
            [&] {
                int running = 0;
                for (auto& id : sims) running += get(id).status == job_status::in_progress;
                return running == busy;
            },
            10s));
        std::vector<std::string> bulk;
        for (int i = 0; i < 3; ++i) {
            job_spec s;
            s.queue = "bulk";
            s.payload = "{\"n\":" + std::to_string(i) + "}";
            bulk.push_back(run_coro(ctx_, broker_->submit(s, now_millis())).value().id);
        }
        for (auto& id : bulk)
            EXPECT_TRUE(wait_until([&] { return get(id).status == job_status::completed; }, 10s)) << id;
        for (auto& id : sims)
            EXPECT_TRUE(wait_until([&] { return get(id).status == job_status::completed; }, 10s)) << id;
        // And the queue stays served afterwards.
        job_spec later;
        later.queue = "bulk";
        later.payload = "{}";
        auto last = run_coro(ctx_, broker_->submit(later, now_millis())).value().id;
        EXPECT_TRUE(wait_until([&] { return get(last).status == job_status::completed; }, 10s));
    }
}

// A worker killed while its completion batch waits in Redis (held there with
// CLIENT PAUSE WRITE, so the kill lands exactly then): whether Redis ran that
// batch or dropped it with the connection, every job completes exactly once.
TEST_F(ProcessTest, WorkerKilledWithACompletionBatchInFlightLosesNothingAndFinishesNothingTwice) {
    constexpr int jobs = 1500;
    std::vector<job_spec> specs(jobs);
    for (int i = 0; i < jobs; ++i) {
        specs[i].queue = "bulk";
        specs[i].max_retries = 10;  // a reclaimed job goes back to the head: it may be in flight again
        specs[i].payload = "{\"i\":" + std::to_string(i) + "}";
    }
    ASSERT_EQ(run_coro(ctx_, broker_->submit_many(specs, now_millis()), 30s).value().size(),
              static_cast<std::size_t>(jobs));
    auto completed = [&] { return redis().cmd_int({"HGET", "spool:{q:bulk}:meta", "done"}); };
    for (int round = 0; round < 3; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        std::string id = "inflight" + std::to_string(round);
        process w{worker_args(id), dir_ + "/" + id + ".log"};
        ASSERT_TRUE(wait_until([&] { return completed() >= 100 * (round + 1); }, 30s));
        redis().cmd({"CLIENT", "PAUSE", "10000", "WRITE"});
        // The worker's next write (a completion batch, a claim with completions
        // pipelined behind it, or a take's job_started events with the next
        // completions behind them) is now held by Redis.
        bool held = wait_until(
            [&] {
                auto clients = redis().cmd_str({"CLIENT", "LIST"});
                std::istringstream lines{clients};
                for (std::string line; std::getline(lines, line);)
                    if (line.find("name=spool-worker:" + id + " ") != std::string::npos &&
                        line.find("flags=b") != std::string::npos &&
                        (line.find("cmd=evalsha") != std::string::npos || line.find("cmd=publish") != std::string::npos))
                        return true;
                return false;
            },
            5s);
        w.signal(SIGKILL);
        w.wait_exit(5s);
        redis().cmd({"CLIENT", "UNPAUSE"});
        ASSERT_TRUE(held) << "the worker sent no write while Redis was paused";
    }
    process finisher{worker_args("finisher"), dir_ + "/finisher.log"};
    ASSERT_TRUE(wait_until([&] { return completed() == jobs; }, 60s)) << completed();
    EXPECT_EQ(redis().cmd_int({"HGET", "spool:{q:bulk}:meta", "completed"}), jobs);  // one completion each
    EXPECT_EQ(redis().zcard("spool:{q:bulk}:queued"), 0);
    EXPECT_EQ(redis().leased("spool:{q:bulk}:active"), 0);
    EXPECT_EQ(redis().zcard("spool:{q:bulk}:failed"), 0);
}
