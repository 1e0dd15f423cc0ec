// src/supervisor/child_process.hpp
// One child process of `spool serve` (a worker or the embedded redis-server):
// fork + exec with the settings a supervised child needs (dies with its parent,
// own process group, no inherited descriptors, stdin from /dev/null), and an
// awaitable exit that reaps it. Exits are seen through a pidfd (Linux >= 5.3),
// or SIGCHLD + waitpid(pid, WNOHANG) where pidfd_open is unavailable; only this
// object's own pid is ever waited for, so other children of the process are
// left alone.
//
// Caveat of PR_SET_PDEATHSIG: the signal fires when the *thread* that forked
// exits, so spawn from a thread that lives as long as the process (the
// io_context thread of `spool serve`).
#pragma once

#include "util/asio.hpp"

#include <spool/result.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spool::supervisor {

// How a child ended, decoded from the wait status.
struct exit_status {
    int code = -1;   // exit code, or -1 when killed by a signal
    int signal = 0;  // the terminating signal, or 0

    bool success() const noexcept { return signal == 0 && code == 0; }
    // "exit code 3", "signal 9 (Killed)".
    std::string describe() const;
    static exit_status from_wait_status(int status) noexcept;
};

struct spawn_options {
    std::vector<std::string> argv;  // argv[0] is the program: a path, or a name looked up in PATH
    std::vector<std::string>
        env;                      // "NAME=value" entries added to (or replacing in) the inherited environment
    bool stdout_to_null = false;  // otherwise stdout is inherited
    bool stderr_to_null = false;  // otherwise stderr is inherited
    bool own_process_group =
        true;  // terminal signals (Ctrl-C) reach only the parent, which stops children in order
    int parent_death_signal = SIGTERM;  // 0: none
};

// Finds `name` on PATH (or checks it when it contains '/'); the absolute path of an
// executable file, or nullopt.
std::optional<std::string> find_executable(const std::string& name);

class child_process {
public:
    // All calls belong to `ex` (one thread).
    explicit child_process(asio::any_io_executor ex);
    // A child still running is SIGKILLed and reaped here (blocking, brief).
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // Starts the program. Errors: no_such_file_or_directory (program not found),
    // permission_denied, or the errno of fork/exec. A started object cannot start again.
    boost::system::error_code start(const spawn_options& opts);

    int pid() const noexcept { return pid_; }
    // True from a successful start() until the child has been reaped.
    bool running() const noexcept { return pid_ > 0 && !status_; }
    // The exit status once reaped.
    const std::optional<exit_status>& status() const noexcept { return status_; }

    // Sends `sig` unless the child has been reaped (so a reused pid is never hit).
    void signal(int sig) noexcept;
    // Reaps the child if it has exited, without blocking; true once reaped.
    bool try_reap() noexcept;
    // Completes when the child has exited and been reaped. One waiter at a time.
    // Error: operation_aborted when the waiting coroutine is cancelled (the child
    // is then still running and still owned here).
    asio::awaitable<result<exit_status>> wait();
    // SIGTERM, wait up to `grace`, then SIGKILL and wait for the reap.
    asio::awaitable<exit_status> terminate(std::chrono::steady_clock::duration grace);

private:
    struct waiter;
    asio::any_io_executor ex_;
    int pid_ = -1;
    std::optional<exit_status> status_;
    std::unique_ptr<waiter> waiter_;
};

}  // namespace spool::supervisor
