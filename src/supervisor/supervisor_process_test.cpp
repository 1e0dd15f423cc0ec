// src/supervisor/supervisor_process_test.cpp
// child_process (the supervisor's fork/exec + pidfd wrapper) with /bin/sh children.
#include "supervisor/child_process.hpp"

#include "supervisor/test_support.hpp"
#include "testing/run_coro.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace spool;
using namespace spool::supervisor;
using spool::testing::run_coro;

namespace {

spawn_options sh(std::string script) {
    spawn_options o;
    o.argv = {"/bin/sh", "-c", std::move(script)};
    return o;
}

exit_status run_to_end(asio::io_context& ctx, const spawn_options& o) {
    child_process c{ctx.get_executor()};
    auto ec = c.start(o);
    EXPECT_FALSE(ec) << ec.message();
    auto r = run_coro(ctx, c.wait());
    EXPECT_TRUE(r.has_value());
    return r ? *r : exit_status{};
}

}  // namespace

TEST(ChildProcess, ReportsExitCode) {
    asio::io_context ctx;
    auto st = run_to_end(ctx, sh("exit 3"));
    EXPECT_EQ(st.code, 3);
    EXPECT_EQ(st.signal, 0);
    EXPECT_FALSE(st.success());
    EXPECT_EQ(st.describe(), "exit code 3");
}

TEST(ChildProcess, ReportsTerminatingSignal) {
    asio::io_context ctx;
    auto st = run_to_end(ctx, sh("kill -9 $$"));
    EXPECT_EQ(st.signal, SIGKILL);
    EXPECT_EQ(st.describe(), "signal 9 (SIGKILL)");
}

TEST(ChildProcess, MissingProgramIsAnErrorNotAChild) {
    asio::io_context ctx;
    child_process c{ctx.get_executor()};
    spawn_options o;
    o.argv = {"spool-no-such-program-here"};
    EXPECT_EQ(c.start(o), boost::system::errc::no_such_file_or_directory);
    EXPECT_FALSE(c.running());
    o.argv = {"/etc/hostname"};  // exists, not executable
    EXPECT_TRUE(c.start(o));
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

TEST(ChildProcess, EnvironmentIsInheritedAndExtended) {
    asio::io_context ctx;
    ::setenv("SPOOL_TEST_INHERITED", "yes", 1);
    auto o =
        sh(R"(test "$SPOOL_TEST_INHERITED" = yes && test "$SPOOL_TEST_EXTRA" = 42 && test "$HOME" = /x)");
    o.env = {"SPOOL_TEST_EXTRA=42", "HOME=/x"};
    EXPECT_TRUE(run_to_end(ctx, o).success());
}

TEST(ChildProcess, StdinIsDevNullAndParentDescriptorsAreClosed) {
    asio::io_context ctx;
    int fd = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
    ASSERT_GE(fd, 3);
    // `read` hits EOF at once on /dev/null (a terminal or pipe would block).
    auto st =
        run_to_end(ctx, sh("if read x; then exit 2; fi; test ! -e /proc/self/fd/" + std::to_string(fd)));
    ::close(fd);
    EXPECT_TRUE(st.success()) << st.describe();
}

TEST(ChildProcess, RunsInItsOwnProcessGroup) {
    asio::io_context ctx;
    child_process c{ctx.get_executor()};
    ASSERT_FALSE(c.start(sh("trap 'exit 0' TERM; while :; do sleep 0.05; done")));
    EXPECT_EQ(::getpgid(c.pid()), c.pid());
    ASSERT_TRUE(test::run_until(ctx, [&] { return test::handles_signal(c.pid(), SIGTERM); }));
    auto st = run_coro(ctx, c.terminate(std::chrono::seconds{5}));
    EXPECT_TRUE(st.success()) << st.describe();
}

TEST(ChildProcess, TerminateEscalatesToSigkill) {
    asio::io_context ctx;
    child_process c{ctx.get_executor()};
    ASSERT_FALSE(c.start(sh("trap '' TERM; while :; do sleep 0.05; done")));
    ASSERT_TRUE(test::run_until(ctx, [&] { return test::handles_signal(c.pid(), SIGTERM); }));
    auto st = run_coro(ctx, c.terminate(std::chrono::milliseconds{200}));
    EXPECT_EQ(st.signal, SIGKILL);
    EXPECT_FALSE(c.running());
}

TEST(ChildProcess, DestructorKillsAndReaps) {
    int pid = -1;
    {
        asio::io_context ctx;
        child_process c{ctx.get_executor()};
        ASSERT_FALSE(c.start(sh("while :; do sleep 0.05; done")));
        pid = c.pid();
    }
    EXPECT_FALSE(test::alive(pid));
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

TEST(ChildProcess, DiesWithItsParent) {
    // An intermediate process starts the child and exits; PR_SET_PDEATHSIG must
    // then end the child, though nobody signals it.
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    pid_t middle = ::fork();
    ASSERT_GE(middle, 0);
    if (middle == 0) {
        asio::io_context ctx;
        child_process c{ctx.get_executor()};
        int pid = c.start(sh("while :; do sleep 0.05; done")) ? -1 : c.pid();
        [[maybe_unused]] auto n = ::write(pipefd[1], &pid, sizeof pid);
        ::_exit(0);  // no destructors: the child must die of the parent-death signal alone
    }
    ::close(pipefd[1]);
    int child = -1;
    ASSERT_EQ(::read(pipefd[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
    ::close(pipefd[0]);
    ASSERT_GT(child, 0);
    int st = 0;
    ASSERT_EQ(::waitpid(middle, &st, 0), middle);
    asio::io_context ctx;
    EXPECT_TRUE(test::run_until(ctx, [&] { return !test::alive(child); }));
}
