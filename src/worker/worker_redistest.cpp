// src/worker/worker_redistest.cpp
// The worker runtime end to end against a real redis-server: handlers, retries,
// cancellation, timeouts, graceful stop and an exactly-once stress run.
#include <spool/worker.hpp>

#include "redis/connection.hpp"
#include "redis/subscriber.hpp"
#include "store/broker.hpp"
#include "store/partitions.hpp"
#include "testing/redis_server.hpp"
#include "testing/run_coro.hpp"
#include "util/clock.hpp"
#include "worker/test_worker_thread.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

using namespace spool;
using namespace std::chrono_literals;
using spool::testing::run_coro;
using spool::testing::wait_until;

namespace {

using spool::test::worker_thread;

class WorkerTest : public spool::testing::RedisTest {
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
    worker_options opts(int concurrency = 4) {
        worker_options o;
        o.redis_url = redis().url();
        o.concurrency = concurrency;
        o.heartbeat = 200ms;
        o.cancel_grace = 1000ms;
        return o;
    }
    std::string submit(std::string queue, std::string payload = "{}", int max_retries = 3) {
        job_spec s;
        s.queue = std::move(queue);
        s.payload = std::move(payload);
        s.max_retries = max_retries;
        return run_coro(ctx_, broker_->submit(s, now_millis())).value().id;
    }
    job_record get(const std::string& id) { return run_coro(ctx_, broker_->get(id)).value(); }
    bool status_is(const std::string& id, job_status s) {
        auto r = run_coro(ctx_, broker_->get(id));
        return r && r->status == s;
    }

    asio::io_context ctx_;
    std::shared_ptr<redis::connection> conn_;
    std::unique_ptr<store::broker> broker_;
};

asio::awaitable<std::string> echo(job_context& job) { co_return job.payload(); }

asio::awaitable<std::string> wait_for_cancel(job_context& job) {
    job.progress(10, "waiting");
    co_await job.wait_cancelled();
    throw std::runtime_error("stopped");
}

}  // namespace

TEST_F(WorkerTest, EchoWorkerCompletesJobsWithTheirPayloadAsResult) {
    worker_thread w{opts(), [](worker& w) { w.handle("echo", handler::async(echo)); }};
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(submit("echo", "{\"n\":" + std::to_string(i) + "}"));
    for (std::size_t i = 0; i < ids.size(); ++i) {
        ASSERT_TRUE(wait_until([&] { return status_is(ids[i], job_status::completed); })) << i;
        EXPECT_EQ(run_coro(ctx_, broker_->get_result(ids[i])).value().data, "{\"n\":" + std::to_string(i) + "}");
        EXPECT_EQ(get(ids[i]).attempts, 1);
    }
}

TEST_F(WorkerTest, BlockingHandlersRunOnThePoolNotTheIoThread) {
    std::atomic<bool> on_io{false};
    std::thread::id io_thread;
    std::mutex mu;
    worker_thread w{opts(), [&](worker& w) {
                        w.handle("calc", handler::blocking([&](job_context& job) {
                                     std::lock_guard lock{mu};
                                     if (std::this_thread::get_id() == io_thread) on_io = true;
                                     job.progress(50, "half");
                                     return std::string{"{\"sum\":3}"};
                                 }));
                    }};
    auto id = submit("calc");
    ASSERT_TRUE(wait_until([&] { return status_is(id, job_status::completed); }));
    EXPECT_FALSE(on_io);
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(id)).value().data, "{\"sum\":3}");
}

// A handler's last progress call right before it returns used to be written
// after the completion, when the lease was gone, and so was dropped.
TEST_F(WorkerTest, LastProgressBeforeReturnIsRecordedBeforeCompletion) {
    auto last_step = [](job_context& job) -> asio::awaitable<std::string> {
        job.progress(50, "half");
        job.progress(100, "done");
        co_return std::string{"{}"};
    };
    worker_thread w{opts(), [&](worker& w) {
                        w.handle("async", handler::async(last_step));
                        w.handle("blocking", handler::blocking([](job_context& job) {
                                     job.progress(100, "done");
                                     return std::string{"{}"};
                                 }));
                    }};
    for (const char* queue : {"async", "blocking"}) {
        auto id = submit(queue);
        ASSERT_TRUE(wait_until([&] { return status_is(id, job_status::completed); })) << queue;
        auto evs = run_coro(ctx_, broker_->events(id, "0", 100)).value();
        ASSERT_GE(evs.size(), 2u) << queue;
        const auto& before_last = evs[evs.size() - 2];
        EXPECT_EQ(before_last.type, "progress") << queue;
        EXPECT_NE(before_last.data.find("\"progress\":100"), std::string::npos) << queue << ": " << before_last.data;
        EXPECT_NE(evs.back().data.find("completed"), std::string::npos) << queue;
        EXPECT_EQ(get(id).progress, 100) << queue;
    }
}

TEST_F(WorkerTest, ThrowingHandlerRetriesThenFails) {
    std::atomic<int> calls{0};
    worker_thread w{opts(), [&](worker& w) {
                        queue_options qo;
                        qo.backoff_base = 10ms;
                        w.handle("flaky", handler::blocking([&](job_context&) -> std::string {
                                     ++calls;
                                     throw std::runtime_error("solver exploded");
                                 }),
                                 qo);
                    }};
    auto id = submit("flaky", "{}", 2);
    ASSERT_TRUE(wait_until([&] { return status_is(id, job_status::failed); }));
    EXPECT_EQ(calls.load(), 3);
    auto rec = get(id);
    EXPECT_EQ(rec.attempts, 3);
    EXPECT_EQ(rec.error_message, "solver exploded");
}

TEST_F(WorkerTest, RetryThenSuccess) {
    std::atomic<int> calls{0};
    worker_thread w{opts(), [&](worker& w) {
                        queue_options qo;
                        qo.backoff_base = 10ms;
                        w.handle("once", handler::blocking([&](job_context& job) -> std::string {
                                     if (++calls == 1) throw std::runtime_error("first try fails");
                                     return "{\"attempt\":" + std::to_string(job.attempt()) + "}";
                                 }),
                                 qo);
                    }};
    auto id = submit("once");
    ASSERT_TRUE(wait_until([&] { return status_is(id, job_status::completed); }));
    EXPECT_EQ(run_coro(ctx_, broker_->get_result(id)).value().data, "{\"attempt\":2}");
}

TEST_F(WorkerTest, InvalidInputFailsAtOnceAfterValidating) {
    std::atomic<int> runs{0};
    worker_thread w{opts(), [&](worker& w) {
                        handler h = handler::blocking([&](job_context&) {
                            ++runs;
                            return std::string{"1"};
                        });
                        h.validate = [](const job_context& job) {
                            if (job.payload().find("\"n\"") == std::string::npos) throw invalid_input("missing n");
                        };
                        w.handle("strict", std::move(h));
                    }};
    auto bad = submit("strict", "{}");
    auto good = submit("strict", "{\"n\":1}");
    ASSERT_TRUE(wait_until([&] { return status_is(bad, job_status::failed); }));
    ASSERT_TRUE(wait_until([&] { return status_is(good, job_status::completed); }));
    EXPECT_EQ(get(bad).attempts, 1);
    EXPECT_EQ(get(bad).error_message, "missing n");
    EXPECT_EQ(runs.load(), 1);
}

TEST_F(WorkerTest, CancelReachesARunningHandler) {
    worker_thread w{opts(), [](worker& w) { w.handle("slow", handler::async(wait_for_cancel)); }};
    auto id = submit("slow");
    ASSERT_TRUE(wait_until([&] { return get(id).progress == 10; }));
    EXPECT_EQ(run_coro(ctx_, broker_->cancel(id, now_millis())).value(), job_status::in_progress);
    ASSERT_TRUE(wait_until([&] { return status_is(id, job_status::cancelled); }));
    EXPECT_EQ(redis().leased("spool:{q:slow}:active"), 0);
}

TEST_F(WorkerTest, TimeoutCancelsTheHandlerAndCountsAFailedAttempt) {
    worker_thread w{opts(), [](worker& w) {
                        queue_options qo;
                        qo.timeout = 1s;
                        qo.backoff_base = 10ms;
                        w.handle("stuck", handler::async(wait_for_cancel), qo);
                    }};
    auto id = submit("stuck", "{}", 0);
    ASSERT_TRUE(wait_until([&] { return status_is(id, job_status::failed); }, 10s));
    EXPECT_EQ(get(id).error_message, "timed out after 1 s");
}

TEST_F(WorkerTest, GracefulStopHandsUnfinishedJobsBack) {
    auto w = std::make_unique<worker_thread>(opts(), [](worker& w) { w.handle("long", handler::async(wait_for_cancel)); });
    auto id = submit("long");
    // The handler runs (its first progress): the worker holds the job. (Its record
    // shows in_progress a moment earlier, from the take in Redis; a stop in between
    // leaves the job to its lease, as a crash would: docs/keys.md, "Taking on waking".)
    ASSERT_TRUE(wait_until([&] { return get(id).progress == 10; }));
    w->stop(100ms);
    auto rec = get(id);
    EXPECT_EQ(rec.status, job_status::queued);
    EXPECT_EQ(rec.attempts, 0);
    EXPECT_EQ(redis().leased("spool:{q:long}:active"), 0);
    EXPECT_EQ(redis().zcard("spool:workers"), 0);
}

TEST_F(WorkerTest, RegistersWithHeartbeatListingRunningJobs) {
    worker_thread w{opts(), [](worker& w) { w.handle("long", handler::async(wait_for_cancel)); }};
    auto id = submit("long");
    ASSERT_TRUE(wait_until([&] {
        auto ws = run_coro(ctx_, broker_->workers()).value();
        return ws.size() == 1 && ws[0].running == std::vector<std::string>{id};
    }));
    auto ws = run_coro(ctx_, broker_->workers()).value();
    EXPECT_EQ(ws[0].id, w.get().id());
    EXPECT_EQ(ws[0].queues, std::vector<std::string>{"long"});
    EXPECT_EQ(ws[0].concurrency, 4);
}

TEST_F(WorkerTest, AClaimTakesAThirdOfTheSlotsAndTheSlotsStillFill) {
    // Three batches in flight (claimed, running, being completed) keep Redis and
    // the worker busy at once; every slot is still used.
    auto sub = redis::subscriber::create(ctx_.get_executor(), redis::parse_url(redis().url()).value());
    sub->subscribe({broker_->updates_channel()});
    sub->start();
    std::vector<std::string> messages;
    asio::co_spawn(
        ctx_,
        [](std::shared_ptr<redis::subscriber> sub, std::vector<std::string>* out) -> asio::awaitable<void> {
            for (;;) {
                auto m = co_await sub->receive();
                if (!m) co_return;
                out->push_back(m->payload);
            }
        }(sub, &messages),
        asio::detached);
    ASSERT_TRUE(wait_until(
        [&] {
            ctx_.run_for(5ms);
            auto v = redis().cmd({"PUBSUB", "NUMSUB", broker_->updates_channel()});
            return v.size() == 2 && v[1] == "1";
        },
        5s));
    std::atomic<int> running{0};
    std::atomic<bool> go{false};
    auto hold = [&](job_context& job) -> std::string {
        ++running;
        while (!go.load()) std::this_thread::sleep_for(1ms);
        return job.payload();
    };
    std::vector<job_spec> specs(9);
    for (auto& s : specs) s.queue = "thirds";
    ASSERT_TRUE(run_coro(ctx_, broker_->submit_many(specs, now_millis()), 10s));
    auto o = opts(9);
    o.threads = 9;
    worker_thread w{o, [&](worker& w) { w.handle("thirds", handler::blocking(hold)); }};
    auto started = [&] {
        int n = 0;
        for (auto& m : messages)
            for (std::size_t at = m.find("job_started"); at != std::string::npos; at = m.find("job_started", at + 1)) ++n;
        return n;
    };
    ASSERT_TRUE(wait_until([&] { ctx_.run_for(5ms); return running.load() == 9 && started() == 9; }, 10s));
    for (auto& m : messages) {
        int n = 0;
        for (std::size_t at = m.find("job_started"); at != std::string::npos; at = m.find("job_started", at + 1)) ++n;
        EXPECT_LE(n, 3) << m;
    }
    go = true;
    ASSERT_TRUE(wait_until([&] { return run_coro(ctx_, broker_->queues()).value().at(0).completed == 9; }, 10s));
    sub->stop();
}

TEST_F(WorkerTest, FourWorkersCompleteTwentyThousandJobsExactlyOnce) {
    constexpr int jobs = 20000;
    std::mutex mu;
    std::unordered_map<std::string, int> runs;
    auto count = [&](job_context& job) -> std::string {
        std::lock_guard lock{mu};
        ++runs[job.id()];
        return job.payload();
    };
    std::vector<std::unique_ptr<worker_thread>> workers;
    for (int i = 0; i < 4; ++i) {
        auto o = opts(50);
        o.id = "stress-" + std::to_string(i);
        workers.push_back(std::make_unique<worker_thread>(o, [&](worker& w) { w.handle("bulk", handler::blocking(count)); }));
    }
    std::vector<job_spec> specs(jobs);
    for (auto& s : specs) s.queue = "bulk";
    auto submitted = run_coro(ctx_, broker_->submit_many(specs, now_millis()), 30s).value();
    ASSERT_EQ(submitted.size(), static_cast<std::size_t>(jobs));
    ASSERT_TRUE(wait_until(
        [&] {
            std::lock_guard lock{mu};
            return runs.size() == static_cast<std::size_t>(jobs);
        },
        60s));
    ASSERT_TRUE(wait_until([&] { return redis().cmd_int({"HGET", "spool:{q:bulk}:meta", "done"}) == jobs; }, 30s));
    for (auto& w : workers) w->stop(5s);
    std::lock_guard lock{mu};
    for (const auto& s : submitted) EXPECT_EQ(runs[s.value().id], 1) << s.value().id;
    EXPECT_EQ(redis().zcard("spool:{q:bulk}:queued"), 0);
    EXPECT_EQ(redis().zcard("spool:{q:bulk}:scheduled"), 0);
    EXPECT_EQ(redis().leased("spool:{q:bulk}:active"), 0);
    EXPECT_EQ(redis().lease_count("spool:{q:bulk}:leases"), 0);
    EXPECT_EQ(redis().zcard("spool:{q:bulk}:failed"), 0);
    EXPECT_EQ(redis().cmd_int({"HGET", "spool:{q:bulk}:meta", "completed"}), jobs);
}

namespace {

// A broker that spreads `queue` over `n` partitions, on the test's connection.
std::unique_ptr<store::broker> partitioned_broker(redis::connection& conn, const std::string& queue, int n) {
    store::broker_options bo;
    bo.partitions = {{queue, n}};
    return std::make_unique<store::broker>(conn, bo);
}

// A unique key that lands in partition `p` of `n`.
std::string key_in_partition(int p, int n, int i) {
    for (int salt = 0;; ++salt) {
        auto k = "k" + std::to_string(i) + "-" + std::to_string(salt);
        if (store::partition_of_key(k, n) == p) return k;
    }
}

}  // namespace

TEST_F(WorkerTest, PartitionedQueueIsDrainedFromEveryPartitionAsOneQueue) {
    auto wide = partitioned_broker(*conn_, "wide", 3);
    std::mutex mu;
    std::unordered_map<std::string, int> runs;
    std::set<std::string> queues_seen;
    auto record = [&](job_context& job) -> std::string {
        std::lock_guard lock{mu};
        ++runs[job.id()];
        queues_seen.insert(job.queue());
        return job.payload();
    };
    queue_options qo;
    qo.partitions = 3;
    worker_thread w{opts(8), [&](worker& w) { w.handle("wide", handler::blocking(record), qo); }};
    // Submitted while the worker idles: each partition's claimer wakes on its own marker.
    std::vector<job_spec> specs(90);
    for (auto& s : specs) s.queue = "wide";
    auto submitted = run_coro(ctx_, wide->submit_many(specs, now_millis()), 10s).value();
    for (const auto& p : store::partition_queues("wide", 3))
        EXPECT_GT(redis().cmd_int({"HGET", "spool:{q:" + p + "}:meta", "submitted"}), 0) << p;
    ASSERT_TRUE(wait_until(
        [&] {
            std::lock_guard lock{mu};
            return runs.size() == specs.size();
        },
        20s));
    ASSERT_TRUE(wait_until([&] { return run_coro(ctx_, wide->queues()).value().at(0).completed == 90; }, 10s));
    std::lock_guard lock{mu};
    for (const auto& s : submitted) EXPECT_EQ(runs[s.value().id], 1);
    EXPECT_EQ(queues_seen, std::set<std::string>{"wide"});  // handlers see the logical queue
}

TEST_F(WorkerTest, NoPartitionStarvesWhileAnotherHasABacklog) {
    auto wide = partitioned_broker(*conn_, "wide", 2);
    // 200 jobs in partition 0, then 5 in partition 1; one slot for both.
    std::vector<job_spec> specs;
    for (int i = 0; i < 205; ++i) {
        job_spec s;
        s.queue = "wide";
        s.unique_key = key_in_partition(i < 200 ? 0 : 1, 2, i);
        specs.push_back(std::move(s));
    }
    auto submitted = run_coro(ctx_, wide->submit_many(specs, now_millis()), 10s).value();
    std::set<std::string> late;
    for (std::size_t i = 200; i < submitted.size(); ++i) late.insert(submitted[i].value().id);
    std::mutex mu;
    std::vector<std::string> order;
    auto o = opts(1);
    o.on_completed = [&](const std::string& id) {
        std::lock_guard lock{mu};
        order.push_back(id);
    };
    queue_options qo;
    qo.partitions = 2;
    worker_thread w{o, [&](worker& w) { w.handle("wide", handler::async(echo), qo); }};
    ASSERT_TRUE(wait_until(
        [&] {
            std::lock_guard lock{mu};
            return order.size() == specs.size();
        },
        30s));
    std::lock_guard lock{mu};
    std::size_t last_late = 0;
    for (std::size_t i = 0; i < order.size(); ++i)
        if (late.count(order[i])) last_late = i;
    // Turns alternate between the partitions: the short one is done long before
    // the backlog of the other (strictly in turn it would end at about 10).
    EXPECT_LT(last_late, 40u);
}

TEST_F(WorkerTest, QueueConcurrencyHoldsOverAllPartitions) {
    auto wide = partitioned_broker(*conn_, "wide", 3);
    std::atomic<int> now_running{0}, most{0}, done{0};
    auto slow = [&](job_context& job) -> std::string {
        int n = ++now_running;
        int m = most.load();
        while (n > m && !most.compare_exchange_weak(m, n)) {
        }
        std::this_thread::sleep_for(5ms);  // holds the slot: what the limit is about
        --now_running;
        ++done;
        return job.payload();
    };
    queue_options qo;
    qo.partitions = 3;
    qo.concurrency = 2;
    std::vector<job_spec> specs(60);
    for (auto& s : specs) s.queue = "wide";
    ASSERT_TRUE(run_coro(ctx_, wide->submit_many(specs, now_millis()), 10s));
    worker_thread w{opts(10), [&](worker& w) { w.handle("wide", handler::blocking(slow), qo); }};
    ASSERT_TRUE(wait_until([&] { return done.load() == 60; }, 30s));
    EXPECT_LE(most.load(), 2);
    EXPECT_EQ(most.load(), 2);
}

TEST_F(WorkerTest, WorkerClaimsFromPartitionsItWasNotToldAbout) {
    // The API spreads the queue over 2 partitions; this worker's config says 1.
    auto wide = partitioned_broker(*conn_, "wide", 2);
    std::vector<job_spec> specs(20);
    for (auto& s : specs) s.queue = "wide";
    ASSERT_TRUE(run_coro(ctx_, wide->submit_many(specs, now_millis()), 10s));
    worker_thread w{opts(4), [&](worker& w) { w.handle("wide", handler::async(echo)); }};
    ASSERT_TRUE(wait_until([&] { return run_coro(ctx_, wide->queues()).value().at(0).completed == 20; }, 10s));
}

TEST_F(WorkerTest, AChildReadsItsParentsResultsAndRunsAfterThem) {
    std::mutex mu;
    std::vector<std::string> order;
    std::string seen;
    auto work = [&](job_context& job) -> std::string {
        std::lock_guard lock{mu};
        order.push_back(job.id());
        if (job.parents().empty()) return R"({"from":")" + job.id() + R"("})";
        for (const auto& p : job.parents()) seen += p.id + "=" + p.result + ";";
        return "{}";
    };
    auto a = submit("dep");
    auto b = submit("dep");
    job_spec s;
    s.queue = "dep";
    s.depends_on = {a, b};
    auto child = run_coro(ctx_, broker_->submit(s, now_millis())).value().id;
    worker_thread w{opts(4), [&](worker& w) { w.handle("dep", handler::blocking(work)); }};
    ASSERT_TRUE(wait_until([&] { return status_is(child, job_status::completed); }, 10s));
    std::lock_guard lock{mu};
    ASSERT_EQ(order.size(), 3u);
    EXPECT_EQ(order.back(), child);
    auto first = std::min(a, b), second = std::max(a, b);  // depends_on is kept sorted
    EXPECT_EQ(seen, first + R"(={"from":")" + first + R"("};)" + second + R"(={"from":")" + second + R"("};)");
}
