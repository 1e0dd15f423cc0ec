// src/handlers/exec_test.cpp
// The exec handler against real child processes (/bin/sh scripts and python3).
#include "handlers/exec.hpp"
#include "handlers/stderr_parser.hpp"
#include "handlers/testing_context.hpp"
#include "testing/redis_server.hpp"  // wait_until
#include "testing/run_coro.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace spool;
using namespace spool::handlers;
using spool::handlers::testing::test_job;
using spool::testing::run_coro;
using spool::testing::wait_until;

namespace {

queue_policy shell_policy(const std::string& script) {
    queue_policy p;
    p.name = "test";
    p.handler = "exec";
    p.exec.command = {"/bin/sh", "-c", script};
    return p;
}

// The handler's result, or "FAILED: <message>" for a job_failure.
std::string run(asio::io_context& io, const handler& h, test_job& job,
                std::chrono::milliseconds limit = std::chrono::seconds{15}) {
    try {
        return run_coro(io, h.async_fn(job.context()), limit);
    } catch (const job_failure& e) {
        return std::string{"FAILED: "} + e.what();
    }
}

std::string run_script(const std::string& script, std::string payload = "{}") {
    asio::io_context io;
    test_job job{io, test_job::info(std::move(payload))};
    return run(io, make_exec_handler(shell_policy(script)), job);
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// A process is gone when it no longer exists, or is a zombie nobody else will
// wait for. Orphans come to us (we are a subreaper), so reap those here.
bool is_gone(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return true;
    if (::kill(pid, 0) == -1 && errno == ESRCH) return true;
    std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

pid_t read_pid(const std::filesystem::path& file) {
    pid_t pid = 0;
    std::ifstream{file} >> pid;
    return pid;
}

class temp_dir {
public:
    temp_dir() {
        char tmpl[] = "/tmp/spool-exec-test-XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::filesystem::remove_all(path_); }
    const std::filesystem::path& path() const { return path_; }
    std::string str() const { return path_.string(); }

private:
    std::filesystem::path path_;
};

class ExecHandler : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        // Grandchildren orphaned by a killed child are re-parented to us, so the
        // test can tell "killed" from "still running" whatever PID 1 does.
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    }
    // No test may leave a process behind: every descendant must be gone (and we
    // reap the orphans that came to us).
    void TearDown() override {
        bool none_left = wait_until([] {
            pid_t r;
            while ((r = ::waitpid(-1, nullptr, WNOHANG)) > 0) {
            }
            return r < 0 && errno == ECHILD;
        });
        EXPECT_TRUE(none_left) << "a child process outlived the test";
    }
};

}  // namespace

TEST_F(ExecHandler, ReturnsStdoutJsonAndReportsProgress) {
    asio::io_context io;
    test_job job{io, test_job::info("{}")};
    auto h = make_exec_handler(shell_policy(
        "cat >/dev/null; echo 'PROGRESS 10 starting' >&2; echo 'some log line' >&2; "
        "echo 'PROGRESS 55.5%' >&2; echo 'PROGRESS 250 too much' >&2; printf '{\"ok\": true}\\n'"));
    EXPECT_EQ(run(io, h, job), R"({"ok": true})");
    auto p = job.progress();
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p[0].percent, 10);
    EXPECT_EQ(p[0].message, "starting");
    EXPECT_EQ(p[1].percent, 55);
    EXPECT_EQ(p[1].message, "");
    EXPECT_EQ(p[2].percent, 100);
}

TEST_F(ExecHandler, PayloadArrivesOnStdin) {
    asio::io_context io;
    test_job job{io, test_job::info(R"({"a": 2, "b": 40})")};
    queue_policy p;
    p.handler = "exec";
    p.exec.command = {"python3", "-c",
                      "import json, sys\n"
                      "d = json.load(sys.stdin)\n"
                      "print(json.dumps({'sum': d['a'] + d['b']}))\n"};
    EXPECT_EQ(run(io, make_exec_handler(p), job), R"({"sum": 42})");
}

TEST_F(ExecHandler, AJobWithParentsReadsAnEnvelopeWithTheirResults) {
    asio::io_context io;
    auto info = test_job::info(R"({"k": 1})");
    info.parents = {{"p-1", R"({"v": 40})"}, {"p-2", "2"}};
    test_job job{io, info};
    queue_policy p;
    p.handler = "exec";
    p.exec.command = {"python3", "-c",
                      "import json, sys\n"
                      "d = json.load(sys.stdin)\n"
                      "r = [x['result'] for x in d['parents']]\n"
                      "print(json.dumps({'sum': d['payload']['k'] + r[0]['v'] + r[1], 'ids': [x['id'] for x in d['parents']]}))\n"};
    EXPECT_EQ(run(io, make_exec_handler(p), job), R"({"sum": 43, "ids": ["p-1", "p-2"]})");
}

TEST_F(ExecHandler, EmptyStdoutIsNull) { EXPECT_EQ(run_script("true"), "null"); }

TEST_F(ExecHandler, LargePayloadNotReadIsNoError) {
    // The child exits without reading: our write gets EPIPE, which is not a failure.
    std::string payload = "\"" + std::string(4 * 1024 * 1024, 'x') + "\"";
    EXPECT_EQ(run_script("echo 1", payload), "1");
}

TEST_F(ExecHandler, NonJsonStdoutFails) {
    auto r = run_script("echo 'hello world'; echo 'why' >&2");
    EXPECT_TRUE(starts_with(r, "FAILED: stdout is not JSON: ")) << r;
    EXPECT_NE(r.find("hello world"), std::string::npos) << r;
    EXPECT_NE(r.find("; stderr: why"), std::string::npos) << r;
}

TEST_F(ExecHandler, NonZeroExitFailsWithStderrTail) {
    EXPECT_EQ(run_script("echo 'PROGRESS 5' >&2; echo 'first' >&2; echo 'Traceback: boom' >&2; exit 3"),
              "FAILED: exit code 3; stderr: first\nTraceback: boom");
}

TEST_F(ExecHandler, StderrTailIsBounded) {
    auto r = run_script("i=0; while [ $i -lt 2000 ]; do echo \"line $i\" >&2; i=$((i+1)); done; exit 1");
    EXPECT_TRUE(starts_with(r, "FAILED: exit code 1; stderr: ...")) << r.substr(0, 100);
    EXPECT_LT(r.size(), 2200u);
    EXPECT_NE(r.find("line 1999"), std::string::npos);
    EXPECT_EQ(r.find("line 0\n"), std::string::npos);
}

TEST_F(ExecHandler, DeathBySignalIsNamed) {
    EXPECT_EQ(run_script("kill -9 $$"), "FAILED: killed by signal 9 (SIGKILL)");
    EXPECT_EQ(run_script("kill -SEGV $$"), "FAILED: killed by signal 11 (SIGSEGV)");
}

TEST_F(ExecHandler, UnknownProgramFailsToStart) {
    asio::io_context io;
    test_job job{io, test_job::info("{}")};
    queue_policy p;
    p.handler = "exec";
    p.exec.command = {"/nonexistent/solver"};
    EXPECT_EQ(run(io, make_exec_handler(p), job),
              "FAILED: cannot start /nonexistent/solver: No such file or directory");
    p.exec.command = {"no-such-program-in-path"};
    EXPECT_EQ(run(io, make_exec_handler(p), job),
              "FAILED: cannot start no-such-program-in-path: No such file or directory");
}

TEST_F(ExecHandler, EnvironmentAndCwdReachTheChild) {
    asio::io_context io;
    auto info = test_job::info("{}");
    info.id = "0193a6b2-0000-7000-8000-000000000001";
    info.queue = "solve";
    info.attempt = 2;
    test_job job{io, info};
    temp_dir dir;
    auto p = shell_policy(
        "printf '{\"id\":\"%s\",\"queue\":\"%s\",\"attempt\":\"%s\",\"mode\":\"%s\",\"cwd\":\"%s\"}' "
        "\"$SPOOL_JOB_ID\" \"$SPOOL_QUEUE\" \"$SPOOL_ATTEMPT\" \"$MODE\" \"$(pwd)\"");
    p.exec.env = {{"MODE", "fast"}};
    p.exec.cwd = dir.str();
    EXPECT_EQ(
        run(io, make_exec_handler(p), job),
        R"({"id":"0193a6b2-0000-7000-8000-000000000001","queue":"solve","attempt":"2","mode":"fast","cwd":")" +
            std::filesystem::canonical(dir.path()).string() + "\"}");
}

TEST_F(ExecHandler, ChildInheritsNoOtherDescriptors) {
    int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
    ASSERT_GE(leaked, 3);
    auto r = run_script("if [ -e /proc/$$/fd/" + std::to_string(leaked) +
                        " ]; then echo '\"leaked\"'; else echo '\"clean\"'; fi");
    ::close(leaked);
    EXPECT_EQ(r, "\"clean\"");
}

TEST_F(ExecHandler, TimeoutKillsTheWholeProcessGroup) {
    temp_dir dir;
    asio::io_context io;
    test_job job{io, test_job::info("{}", std::chrono::seconds{1})};
    auto p = shell_policy("sleep 1000 & echo $! > '" + dir.str() + "/grandchild'; echo $$ > '" + dir.str() +
                          "/child'; wait");
    p.exec.kill_grace = std::chrono::milliseconds{2000};
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(run(io, make_exec_handler(p), job), "FAILED: timed out after 1 s");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{3});  // SIGTERM sufficed
    pid_t child = read_pid(dir.path() / "child");
    pid_t grandchild = read_pid(dir.path() / "grandchild");
    ASSERT_GT(child, 0);
    ASSERT_GT(grandchild, 0);
    EXPECT_TRUE(is_gone(child));
    EXPECT_TRUE(wait_until([&] { return is_gone(grandchild); }))
        << "grandchild " << grandchild << " survived";
}

TEST_F(ExecHandler, CleanExitStillKillsLeftoversInTheGroup) {
    temp_dir dir;
    auto r = run_script("sleep 1000 >/dev/null 2>&1 & echo $! > '" + dir.str() + "/grandchild'; echo '{}'");
    EXPECT_EQ(r, "{}");
    pid_t grandchild = read_pid(dir.path() / "grandchild");
    ASSERT_GT(grandchild, 0);
    EXPECT_TRUE(wait_until([&] { return is_gone(grandchild); }))
        << "grandchild " << grandchild << " survived";
}

TEST_F(ExecHandler, CancelStopsTheChild) {
    temp_dir dir;
    asio::io_context io;
    test_job job{io, test_job::info("{}")};
    job.on_progress([&](const auto&) { job.cancel(); });
    auto p = shell_policy("echo $$ > '" + dir.str() + "/child'; echo 'PROGRESS 1 started' >&2; sleep 1000");
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(run(io, make_exec_handler(p), job), "FAILED: cancelled");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{3});
    pid_t child = read_pid(dir.path() / "child");
    ASSERT_GT(child, 0);
    EXPECT_TRUE(is_gone(child));
}

namespace {

// The handler raced against a timer, as a worker might bound it: the timer wins
// and the handler's coroutine is cancelled from outside. Returns the winner's index.
asio::awaitable<std::size_t> race(handler h, job_context* ctx, std::chrono::milliseconds after) {
    asio::steady_timer timer{co_await asio::this_coro::executor, after};
    auto r = co_await (h.async_fn(*ctx) || timer.async_wait(use_tuple));
    co_return r.index();
}

}  // namespace

TEST_F(ExecHandler, CancellingTheCoroutineStillStopsAndReapsTheChild) {
    temp_dir dir;
    asio::io_context io;
    test_job job{io, test_job::info("{}")};
    auto p = shell_policy("sleep 1000 & echo $! > '" + dir.str() + "/grandchild'; echo $$ > '" + dir.str() +
                          "/child'; wait");
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(run_coro(io, race(make_exec_handler(p), &job.context(), std::chrono::milliseconds{200})), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{3});
    pid_t child = read_pid(dir.path() / "child");
    pid_t grandchild = read_pid(dir.path() / "grandchild");
    ASSERT_GT(child, 0);
    ASSERT_GT(grandchild, 0);
    EXPECT_TRUE(is_gone(child));
    EXPECT_TRUE(wait_until([&] { return is_gone(grandchild); }))
        << "grandchild " << grandchild << " survived";
}

TEST_F(ExecHandler, SigtermIgnoredMeansSigkillAfterGrace) {
    asio::io_context io;
    test_job job{io, test_job::info("{}")};
    job.on_progress([&](const auto&) { job.cancel(cancel_reason::shutdown); });
    auto p = shell_policy("trap '' TERM; echo 'PROGRESS 1' >&2; sleep 1000");
    p.exec.kill_grace = std::chrono::milliseconds{300};
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(run(io, make_exec_handler(p), job), "FAILED: worker shutting down");
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(took, std::chrono::milliseconds{300});
    EXPECT_LT(took, std::chrono::seconds{3});
}

TEST_F(ExecHandler, OutputOverTheLimitFailsWithoutGrowing) {
    auto p = shell_policy("exec cat /dev/zero");
    p.exec.max_output_bytes = 1024 * 1024;
    asio::io_context io;
    test_job job{io, test_job::info("{}")};
    EXPECT_EQ(run(io, make_exec_handler(p), job), "FAILED: stdout exceeds 1048576 bytes");

    auto e = shell_policy("exec cat /dev/zero >&2");
    e.exec.max_output_bytes = 1024 * 1024;
    test_job job2{io, test_job::info("{}")};
    auto r = run(io, make_exec_handler(e), job2);
    EXPECT_TRUE(starts_with(r, "FAILED: stderr exceeds 1048576 bytes")) << r.substr(0, 100);
}

TEST_F(ExecHandler, SeveralChildrenRunAtOnce) {
    // Each child waits until all have started, so this only passes if they run concurrently.
    constexpr int n = 6;
    temp_dir dir;
    asio::io_context io;
    auto p = shell_policy("touch \"" + dir.str() +
                          "/$SPOOL_JOB_ID\"; "
                          "while [ $(ls '" +
                          dir.str() + "' | wc -l) -lt " + std::to_string(n) +
                          " ]; do sleep 0.01; done; "
                          "cat");
    auto h = make_exec_handler(p);
    std::vector<std::unique_ptr<test_job>> jobs;
    std::vector<std::optional<std::string>> results(n);
    int done = 0;
    for (int i = 0; i < n; ++i) {
        auto info = test_job::info("{\"n\":" + std::to_string(i) + "}", std::chrono::seconds{10});
        info.id = "job-" + std::to_string(i);
        jobs.push_back(std::make_unique<test_job>(io, info));
        asio::co_spawn(io, h.async_fn(jobs.back()->context()), [&, i](std::exception_ptr e, std::string r) {
            if (!e) results[i] = std::move(r);
            ++done;
        });
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{15};
    while (done < n && std::chrono::steady_clock::now() < deadline)
        io.run_one_for(std::chrono::milliseconds{10});
    ASSERT_EQ(done, n);
    for (int i = 0; i < n; ++i) EXPECT_EQ(results[i], "{\"n\":" + std::to_string(i) + "}") << i;
}

TEST(StderrParser, ParsesProgressLines) {
    EXPECT_EQ(parse_progress_line("PROGRESS 42")->percent, 42);
    EXPECT_EQ(parse_progress_line("PROGRESS 42 half way there ")->message, "half way there");
    EXPECT_EQ(parse_progress_line("  PROGRESS 7.9%\r")->percent, 7);
    EXPECT_EQ(parse_progress_line("PROGRESS -5")->percent, 0);
    EXPECT_EQ(parse_progress_line("PROGRESS 101")->percent, 100);
    EXPECT_FALSE(parse_progress_line("PROGRESS"));
    EXPECT_FALSE(parse_progress_line("PROGRESS abc"));
    EXPECT_FALSE(parse_progress_line("PROGRESS42"));
    EXPECT_FALSE(parse_progress_line("progress 42"));
    EXPECT_FALSE(parse_progress_line("error: PROGRESS 42"));
}

TEST(StderrParser, SplitsLinesAcrossChunksAndKeepsATail) {
    std::vector<std::pair<int, std::string>> events;
    stderr_parser p{[&](int pct, std::string msg) { events.emplace_back(pct, std::move(msg)); }, 16};
    p.feed("PROG");
    p.feed("RESS 30 a\nwarn");
    p.feed("ing 1\nPROGRESS 60\n");
    p.feed("last words");
    p.finish();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0], (std::pair<int, std::string>{30, "a"}));
    EXPECT_EQ(events[1], (std::pair<int, std::string>{60, ""}));
    EXPECT_EQ(p.tail(), "...ng 1\nlast words");
    EXPECT_EQ(p.total_bytes(), 46u);
}

TEST(StderrParser, VeryLongLinesAreOutputNotProgress) {
    int progress = 0;
    stderr_parser p{[&](int, std::string) { ++progress; }, 32};
    p.feed("PROGRESS 50 " + std::string(100 * 1024, 'x') + "\nPROGRESS 60\n");
    p.finish();
    EXPECT_EQ(progress, 1);
    EXPECT_EQ(p.tail(), "..." + std::string(31, 'x'));
}
