// src/handlers/child_process.hpp
// One child process for the exec handler: started with posix_spawn (no shell) in
// its own process group, with pipes on stdin/stdout/stderr and every other
// descriptor closed, its exit observed through a pidfd on the I/O executor (no
// threads, no SIGCHLD handler, so any number of children may run at once).
//
// Nothing else in the process may reap our children (no waitpid(-1, ...)).
#pragma once

#include "util/asio.hpp"

#include <spool/result.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace spool::handlers {

struct spawn_options {
    std::vector<std::string> argv;  // argv[0] without '/' is looked up in PATH (env's PATH if set there)
    std::vector<std::string> env;   // the complete environment, "NAME=value"
    std::string cwd;                // empty: inherit
};

class child_process {
public:
    // Starts the child. Errors: the errno of the failed step (e.g. ENOENT for an
    // unknown program or cwd) as a system error_code.
    static result<std::unique_ptr<child_process>> spawn(asio::any_io_executor ex, const spawn_options& opts);

    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    // If the child was never reaped (the handler was torn down early), kills its
    // group and reaps it, blocking briefly: a last resort, never the normal path.
    ~child_process();

    pid_t pid() const noexcept { return pid_; }
    asio::posix::stream_descriptor& stdin_pipe() noexcept { return stdin_; }
    asio::posix::stream_descriptor& stdout_pipe() noexcept { return stdout_; }
    asio::posix::stream_descriptor& stderr_pipe() noexcept { return stderr_; }

    // Completes when the child has exited (it stays a zombie until reap()), or
    // early when the wait is cancelled; check has_exited() afterwards.
    asio::awaitable<void> wait_exit();
    // True once the child has exited (reaped or not). Never blocks.
    bool has_exited() const noexcept;
    // Sends `sig` to the child's whole process group (no-op once reaped).
    void kill_group(int sig) noexcept;
    // Collects the exit status of an exited child (waitpid); returns the raw
    // status, or nullopt if the child is still running. Idempotent.
    std::optional<int> reap() noexcept;
    // Closes our ends of the three pipes, aborting pending reads and writes.
    void close_pipes() noexcept;

private:
    child_process(asio::any_io_executor ex, pid_t pid);

    pid_t pid_;
    std::optional<int> status_;  // set by reap()
    asio::posix::stream_descriptor stdin_;
    asio::posix::stream_descriptor stdout_;
    asio::posix::stream_descriptor stderr_;
    asio::posix::stream_descriptor pidfd_;  // not open when the kernel has no pidfd_open
};

// "SIGKILL" for 9; "signal 64" when the number has no name.
std::string signal_name(int sig);

}  // namespace spool::handlers
