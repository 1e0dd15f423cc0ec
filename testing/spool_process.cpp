// testing/spool_process.cpp
#include "testing/spool_process.hpp"

#include "testing/redis_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

extern char** environ;

namespace spool::testing {

namespace {

// Variables `spool` reads (configuration, docs/operations.md): a test sets the ones
// it wants through `env`.
bool configures_spool(std::string_view name) {
    static const char* const exact[] = {"API_PORT", "START_WORKERS", "SOLVER_WORKERS", "LOG_LEVEL",
                                        "RESULT_TTL_SECONDS"};
    for (const char* e : exact)
        if (name == e) return true;
    return name.starts_with("SPOOL_") || name.starts_with("REDIS_") || name.starts_with("WORKER_");
}

}  // namespace

std::string spool_binary() {
    const char* b = std::getenv("SPOOL_BINARY");
    return b ? b : "spool";
}

spool_process::spool_process(const std::vector<std::string>& args, const std::string& log, const env_list& env) {
    // Everything the child needs is built before fork (no allocation after it).
    std::vector<std::string> argv_s{spool_binary()};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv{*e};
        if (!configures_spool(kv.substr(0, kv.find('=')))) env_s.emplace_back(kv);
    }
    for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test killed by its timeout leaves nothing behind
        if (::getppid() != parent) ::_exit(127);
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        int in = ::open("/dev/null", O_RDONLY);
        if (in >= 0) ::dup2(in, 0);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
}

spool_process::~spool_process() {
    if (pid_ <= 0) return;
    signal(SIGTERM);
    if (wait_exit(std::chrono::seconds{15}) < 0) kill9();
}

bool spool_process::alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return false;
    }
    return true;
}

void spool_process::signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
}

void spool_process::kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
}

int spool_process::wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return exit_status_;
    return wait_until([&] { return !alive(); }, timeout) ? exit_status_ : -1;
}

}  // namespace spool::testing
