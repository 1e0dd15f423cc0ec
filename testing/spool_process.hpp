// testing/spool_process.hpp
// For the black-box tests: a child process running the spool binary (SPOOL_BINARY,
// which ctest sets; else `spool` from PATH) with its output in a log file, stdin
// from /dev/null, and an environment the test controls: ours minus every variable
// that configures Spool behind the test's back, plus the test's own. It dies with
// the test process (PR_SET_PDEATHSIG), and is stopped with SIGTERM (then SIGKILL
// after 15 s) when destroyed.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace spool::testing {

std::string spool_binary();

class spool_process {
public:
    using env_list = std::vector<std::pair<std::string, std::string>>;

    spool_process(const std::vector<std::string>& args, const std::string& log, const env_list& env = {});
    ~spool_process();
    spool_process(const spool_process&) = delete;
    spool_process& operator=(const spool_process&) = delete;

    bool alive();
    pid_t pid() const noexcept { return pid_; }
    void signal(int sig);
    // SIGKILL, and reaped.
    void kill9();
    // Waits for the exit: the exit status (128 + signal when killed), or -1 on timeout.
    int wait_exit(std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
    int exit_status_ = -1;
};

}  // namespace spool::testing
