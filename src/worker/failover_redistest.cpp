// src/worker/failover_redistest.cpp
// Workers under load while Redis fails over, with real processes on loopback: a
// Redis Cluster master killed with SIGKILL (its replica is promoted), a slot
// migrated to another master while jobs run, and a Sentinel-watched master
// killed the same way. Every job must end completed, exactly once (one
// `completed` history entry, one entry in the completed index), with no worker
// restarted.
#include <spool/worker.hpp>

#include "redis/connection.hpp"
#include "store/broker.hpp"
#include "store/keys.hpp"
#include "store/partitions.hpp"
#include "testing/redis_cluster.hpp"
#include "testing/run_coro.hpp"
#include "util/clock.hpp"
#include "worker/test_worker_thread.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

#include <cstdlib>

#include <atomic>
#include <condition_variable>
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

// Submits `n` jobs to `queue` through `url`, runs a worker on them, calls
// `disrupt` once `after` have run, and checks that every job ends completed once.
class load_run {
public:
    // `partitions`: the queues' partitions (store/partitions.hpp), for submits and the worker.
    explicit load_run(std::string url, int partitions = 1) : url_{std::move(url)}, partitions_{partitions} {
        auto o = redis::parse_url(url_).value();
        o.request_timeout = 10s;
        conn_ = redis::connection::create(ctx_.get_executor(), o);
        conn_->start();
        store::broker_options bo;
        for (const char* q : {"fo", "mig", "sfo", "wide"}) bo.partitions[q] = partitions;
        broker_ = std::make_unique<store::broker>(*conn_, bo);
    }
    ~load_run() {
        conn_->stop();
        ctx_.run_for(50ms);
    }

    std::vector<std::string> submit(const std::string& queue, int n) {
        std::vector<job_spec> specs(static_cast<std::size_t>(n));
        for (auto& s : specs) s.queue = queue;
        auto r = run_coro(ctx_, broker_->submit_many(specs, now_millis()), 30s).value();
        std::vector<std::string> ids;
        for (auto& x : r) ids.push_back(x.value().id);
        return ids;
    }

    void run(const std::string& queue, const std::vector<std::string>& ids, std::size_t after,
             const std::function<void()>& disrupt) {
        std::mutex mu;
        std::condition_variable go;
        bool held = true;  // jobs past the first `after` wait for the disruption
        std::unordered_map<std::string, int> runs;
        auto work = [&](job_context& job) -> std::string {
            std::this_thread::sleep_for(2ms);  // a job that takes a little while
            std::unique_lock lock{mu};
            ++runs[job.id()];
            // However slow this test's thread is to see `after` runs, most jobs are
            // still to run when the disruption comes (the deadline only guards a hang).
            if (runs.size() > after) go.wait_for(lock, 10s, [&] { return !held; });
            return job.payload();
        };
        worker_options wo;
        wo.redis_url = url_;
        wo.concurrency = 20;
        wo.heartbeat = 200ms;
        wo.id = "failover-" + queue;
        queue_options qo;
        qo.lease = 1500ms;  // a completion lost with the old master comes back soon
        qo.partitions = partitions_;
        worker_thread w{wo, [&](worker& wk) { wk.handle(queue, handler::blocking(work), qo); }};
        ASSERT_TRUE(wait_until(
            [&] {
                std::lock_guard lock{mu};
                return runs.size() >= after;
            },
            30s));
        const auto before = completed_count(queue);
        {
            std::lock_guard lock{mu};
            held = false;
        }
        go.notify_all();
        disrupt();
        // The disruption came while most jobs were still to run.
        EXPECT_LT(before, static_cast<long long>(ids.size()) / 2);
        ASSERT_TRUE(
            wait_until([&] { return completed_count(queue) == static_cast<long long>(ids.size()); }, 90s))
            << "completed " << completed_count(queue) << " of " << ids.size() << "; " << conn_->last_error();
        w.stop(5s);
        std::lock_guard lock{mu};
        for (const auto& id : ids) {
            EXPECT_GE(runs[id], 1) << id;
            auto j = run_coro(ctx_, broker_->get(id), 10s);
            ASSERT_TRUE(j) << id;
            EXPECT_EQ(j->status, job_status::completed) << id;
        }
        // Finished once: one `completed` entry in each job's history.
        for (std::size_t i = 0; i < ids.size(); i += 7) {
            auto evs = run_coro(ctx_, broker_->events(ids[i], "0", 100), 10s).value();
            int completions = 0;
            for (const auto& e : evs)
                if (e.data.find("\"status\":\"completed\"") != std::string::npos) ++completions;
            EXPECT_EQ(completions, 1) << ids[i];
        }
    }

    // Over every partition; -1 while Redis cannot say.
    long long completed_count(const std::string& queue) {
        long long n = 0;
        for (const auto& p : store::partition_queues(queue, partitions_)) {
            // Completed jobs in the partition's `done` index (its meta count).
            auto r = run_coro(
                ctx_, conn_->exec(redis::command{"HGET", store::keys{"spool"}.meta(p), "done"}, 5s), 10s);
            if (!r || r->is_error()) return -1;
            n += r->is_nil() ? 0 : std::atoll(r->str.c_str());
        }
        return n;
    }

private:
    std::string url_;
    int partitions_ = 1;
    asio::io_context ctx_;
    std::shared_ptr<redis::connection> conn_;
    std::unique_ptr<store::broker> broker_;
};

}  // namespace

TEST(ClusterFailover, MasterKilledUnderLoadLosesNoJobAndFinishesNoneTwice) {
    spool::testing::redis_cluster cluster{3, 1};
    load_run load{cluster.url()};
    auto ids = load.submit("fo", 1500);
    int victim = cluster.master_of(cluster.keyslot("{q:fo}"));
    ASSERT_GE(victim, 0);
    ASSERT_TRUE(cluster.wait_replicated(victim));  // the queue itself was acknowledged by a replica
    load.run("fo", ids, 300, [&] { cluster.nodes()[static_cast<std::size_t>(victim)]->kill(); });
    EXPECT_NE(cluster.master_of(cluster.keyslot("{q:fo}")), victim);
}

TEST(ClusterFailover, QueueSlotMigratedUnderLoadLosesNoJobAndFinishesNoneTwice) {
    spool::testing::redis_cluster cluster{3, 0};
    load_run load{cluster.url()};
    auto ids = load.submit("mig", 1500);
    int slot = cluster.keyslot("{q:mig}");
    int from = cluster.master_of(slot);
    int to = cluster.other_master(from);
    load.run("mig", ids, 300, [&] { cluster.move_slot(slot, to); });
    EXPECT_EQ(cluster.master_of(slot), to);
}

TEST(ClusterFailover, PartitionedQueueSurvivesAKilledMasterAndAMigratedSlotUnderLoad) {
    // One queue over three partitions, one per master: one partition's slot
    // moved to another master, then a third master killed (its replica takes
    // over), mid-run.
    spool::testing::redis_cluster cluster{3, 1};
    const auto parts = store::partition_queues("wide", 3);
    std::set<int> masters;
    for (const auto& p : parts) masters.insert(cluster.master_of(cluster.keyslot("{q:" + p + "}")));
    EXPECT_EQ(masters.size(), 3u) << "the partitions share a master";
    load_run load{cluster.url(), 3};
    auto ids = load.submit("wide", 1500);
    const int killed = cluster.master_of(cluster.keyslot("{q:" + parts[1] + "}"));
    const int moved_slot = cluster.keyslot("{q:" + parts[2] + "}");
    ASSERT_TRUE(cluster.wait_replicated(killed));
    load.run("wide", ids, 300, [&] {
        cluster.move_slot(moved_slot, cluster.master_of(cluster.keyslot("{q:" + parts[0] + "}")));
        cluster.nodes()[static_cast<std::size_t>(killed)]->kill();
    });
    EXPECT_NE(cluster.master_of(cluster.keyslot("{q:" + parts[1] + "}")), killed);
}

TEST(SentinelFailover, MasterKilledUnderLoadLosesNoJobAndFinishesNoneTwice) {
    spool::testing::sentinel_group group;
    load_run load{group.url()};
    auto ids = load.submit("sfo", 1500);
    ASSERT_TRUE(group.wait_replicated());
    load.run("sfo", ids, 300, [&] { group.master().kill(); });
    EXPECT_EQ(group.reported_master_port(), group.replica().port());
}

namespace {

// Submits `n` jobs one by one to a replicated queue (each awaited: a 201 each),
// kills the master with `kill` right after the last acknowledgement, then checks
// through the same connection that every acknowledged job exists after the failover.
void acknowledged_submits_survive(const std::string& url, int n, const std::function<void()>& kill,
                                  const std::function<bool()>& failed_over) {
    asio::io_context ctx;
    auto o = redis::parse_url(url).value();
    o.request_timeout = 10s;
    auto conn = redis::connection::create(ctx.get_executor(), o);
    conn->start();
    store::broker_options bo;
    bo.replicated_queues = {"dur"};
    bo.replica_timeout = 2000ms;
    store::broker broker{*conn, bo};
    std::vector<std::string> acked;
    for (int i = 0; i < n; ++i) {
        job_spec s;
        s.queue = "dur";
        s.payload = "{\"i\":" + std::to_string(i) + "}";
        auto r = run_coro(ctx, broker.submit(s, now_millis()), 10s);
        ASSERT_TRUE(r) << i << ": " << r.error().message();
        acked.push_back(r->id);
    }
    kill();
    ASSERT_TRUE(wait_until(failed_over, 30s));
    for (const auto& id : acked) {
        result<job_record> j = errc::timeout;
        // The first reads may still meet the failover: retried until the deadline.
        wait_until(
            [&] {
                j = run_coro(ctx, broker.get(id), 10s);
                return j || j.error() == errc::job_not_found;
            },
            30s);
        ASSERT_TRUE(j) << "acknowledged job " << id << " is gone: " << j.error().message();
        EXPECT_EQ(j->status, job_status::queued);
    }
    conn->stop();
    ctx.run_for(50ms);
}

}  // namespace

TEST(ClusterFailover, ReplicatedSubmitsSurviveTheirMasterKilledRightAfter) {
    spool::testing::redis_cluster cluster{3, 1};
    int victim = cluster.master_of(cluster.keyslot("{q:dur}"));
    ASSERT_TRUE(cluster.wait_replicated(victim));  // its replica has synced: WAIT can be answered
    acknowledged_submits_survive(
        cluster.url(), 300, [&] { cluster.nodes()[static_cast<std::size_t>(victim)]->kill(); },
        [&] {
            int m = cluster.master_of(cluster.keyslot("{q:dur}"));
            return m >= 0 && m != victim;
        });
}

TEST(SentinelFailover, ReplicatedSubmitsSurviveTheMasterKilledRightAfter) {
    spool::testing::sentinel_group group;
    acknowledged_submits_survive(
        group.url(), 300, [&] { group.master().kill(); },
        [&] { return group.reported_master_port() == group.replica().port(); });
}
