// src/supervisor/worker_pool_test.cpp
// The pool with a stand-in worker: a shell loop that exits 0 on SIGTERM (or
// ignores it), so restarts, graceful stop and the SIGKILL escalation are real.
#include "supervisor/worker_pool.hpp"

#include "supervisor/test_support.hpp"
#include "testing/run_coro.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

using namespace spool;
using namespace spool::supervisor;
using spool::testing::run_coro;
using namespace std::chrono_literals;

namespace {

constexpr const char* polite_worker = "trap 'exit 0' TERM; while :; do sleep 0.05; done";
constexpr const char* stubborn_worker = "trap '' TERM; while :; do sleep 0.05; done";

worker_pool_options options(const char* script, std::size_t n) {
    worker_pool_options o;
    o.argv = {"/bin/sh", "-c", script};
    o.workers = n;
    o.backoff_initial = 50ms;
    o.backoff_max = 200ms;
    return o;
}

// Every slot has a child, and each has installed its SIGTERM trap.
bool all_running(const worker_pool& pool) {
    auto p = pool.pids();
    return std::all_of(p.begin(), p.end(),
                       [](int pid) { return pid > 0 && test::handles_signal(pid, SIGTERM); });
}

void expect_no_children_left() {
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

}  // namespace

TEST(WorkerPool, StartsEveryWorkerAsItsOwnProcess) {
    asio::io_context ctx;
    worker_pool pool{ctx.get_executor(), options(polite_worker, 3)};
    pool.start();
    ASSERT_TRUE(test::run_until(ctx, [&] { return all_running(pool); }));
    auto pids = pool.pids();
    std::sort(pids.begin(), pids.end());
    EXPECT_EQ(std::unique(pids.begin(), pids.end()), pids.end());
    for (int pid : pids) EXPECT_TRUE(test::alive(pid));
    run_coro(ctx, pool.stop(5s));
    expect_no_children_left();
}

TEST(WorkerPool, KilledWorkerIsRestartedWithANewPid) {
    asio::io_context ctx;
    worker_pool pool{ctx.get_executor(), options(polite_worker, 2)};
    pool.start();
    ASSERT_TRUE(test::run_until(ctx, [&] { return all_running(pool); }));
    int victim = pool.pids()[0];
    int other = pool.pids()[1];
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    ASSERT_TRUE(test::run_until(ctx, [&] {
        auto p = pool.pids();
        return p[0] > 0 && p[0] != victim && test::handles_signal(p[0], SIGTERM);
    }));
    EXPECT_EQ(pool.restarts(), 1u);
    EXPECT_EQ(pool.pids()[1], other);  // the neighbour was not touched
    EXPECT_FALSE(test::alive(victim));
    run_coro(ctx, pool.stop(5s));
    expect_no_children_left();
}

TEST(WorkerPool, WorkerExitingOnItsOwnIsRestartedToo) {
    asio::io_context ctx;
    worker_pool pool{ctx.get_executor(), options("sleep 0.05; exit 7", 1)};
    pool.start();
    EXPECT_TRUE(test::run_until(ctx, [&] { return pool.restarts() >= 2; }));
    run_coro(ctx, pool.stop(5s));
    expect_no_children_left();
}

TEST(WorkerPool, GracefulStopEndsEveryWorkerWithinTheGrace) {
    asio::io_context ctx;
    worker_pool pool{ctx.get_executor(), options(polite_worker, 3)};
    pool.start();
    ASSERT_TRUE(test::run_until(ctx, [&] { return all_running(pool); }));
    auto pids = pool.pids();
    auto t0 = std::chrono::steady_clock::now();
    run_coro(ctx, pool.stop(10s), 15s);
    // They obeyed SIGTERM: far quicker than the grace period.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_EQ(pool.restarts(), 0u);
    for (int pid : pids) EXPECT_FALSE(test::alive(pid));
    expect_no_children_left();
}

TEST(WorkerPool, WorkerIgnoringSigtermIsKilledAfterTheGrace) {
    asio::io_context ctx;
    worker_pool pool{ctx.get_executor(), options(stubborn_worker, 2)};
    pool.start();
    ASSERT_TRUE(test::run_until(ctx, [&] { return all_running(pool); }));
    auto pids = pool.pids();
    auto t0 = std::chrono::steady_clock::now();
    run_coro(ctx, pool.stop(300ms), 10s);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 5s);
    EXPECT_EQ(pool.running(), 0u);
    for (int pid : pids) EXPECT_FALSE(test::alive(pid));
    expect_no_children_left();
}

TEST(WorkerPool, UnstartableWorkerKeepsRetryingAndStopsCleanly) {
    asio::io_context ctx;
    worker_pool_options o = options(polite_worker, 1);
    o.argv = {"/nonexistent/spool-worker"};
    worker_pool pool{ctx.get_executor(), o};
    pool.start();
    EXPECT_TRUE(test::run_until(ctx, [&] { return pool.restarts() >= 2; }));
    EXPECT_EQ(pool.running(), 0u);
    auto t0 = std::chrono::steady_clock::now();
    run_coro(ctx, pool.stop(5s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);  // a pending backoff does not delay stop
    expect_no_children_left();
}

TEST(WorkerPool, NoRestartAfterStop) {
    asio::io_context ctx;
    worker_pool pool{ctx.get_executor(), options(polite_worker, 2)};
    pool.start();
    ASSERT_TRUE(test::run_until(ctx, [&] { return all_running(pool); }));
    run_coro(ctx, pool.stop(5s));
    // No backoff timer, no child wait, nothing left: the loop runs dry at once.
    ctx.restart();
    auto t0 = std::chrono::steady_clock::now();
    ctx.run_for(3s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_EQ(pool.running(), 0u);
    EXPECT_EQ(pool.restarts(), 0u);
    expect_no_children_left();
}

TEST(WorkerPool, SlotIndexAndEnvironmentReachTheWorker) {
    asio::io_context ctx;
    char tmpl[] = "/tmp/spool-pool-XXXXXX";
    ASSERT_TRUE(::mkdtemp(tmpl));
    std::filesystem::path dir{tmpl};
    auto script =
        "echo \"$SPOOL_WORKER_SLOT $EXTRA\" > " + dir.string() + "/slot-$SPOOL_WORKER_SLOT; " + polite_worker;
    auto o = options(script.c_str(), 2);
    o.env = {"EXTRA=hello"};
    worker_pool pool{ctx.get_executor(), o};
    pool.start();
    auto content = [&](int slot) {
        std::ifstream in{dir / ("slot-" + std::to_string(slot))};
        std::string line;
        std::getline(in, line);
        return line;
    };
    EXPECT_TRUE(test::run_until(ctx, [&] { return content(0) == "0 hello" && content(1) == "1 hello"; }));
    run_coro(ctx, pool.stop(5s));
    expect_no_children_left();
    std::filesystem::remove_all(dir);
}
