// src/handlers/child_process.cpp
#include "handlers/child_process.hpp"

#include <boost/system/error_code.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace spool::handlers {

namespace {

boost::system::error_code errno_code(int e) { return {e, boost::system::system_category()}; }

class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_{fd} {}
    unique_fd(unique_fd&& o) noexcept : fd_{std::exchange(o.fd_, -1)} {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

struct pipe_ends {
    unique_fd read;
    unique_fd write;
};

// Both ends close-on-exec. The end the child uses is moved to fd >= 3 so that its
// dup2 onto 0, 1 or 2 can never clobber another of the child's pipes.
result<pipe_ends> make_pipe(bool child_reads) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return errno_code(errno);
    pipe_ends p{unique_fd{fds[0]}, unique_fd{fds[1]}};
    unique_fd& child_end = child_reads ? p.read : p.write;
    if (child_end.get() < 3) {
        int moved = ::fcntl(child_end.get(), F_DUPFD_CLOEXEC, 3);
        if (moved < 0) return errno_code(errno);
        child_end.reset(moved);
    }
    return p;
}

// Writing to a pipe whose reader has gone raises SIGPIPE, which would kill the
// worker; we want EPIPE instead. Children get the default disposition back.
void ignore_sigpipe_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction old {};
        if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
    });
}

std::string_view env_value(const std::vector<std::string>& env, std::string_view name) {
    for (const auto& kv : env)
        if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 && kv[name.size()] == '=')
            return std::string_view{kv}.substr(name.size() + 1);
    return {};
}

bool is_executable_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The path to exec for argv[0]: as is when it holds a '/', else the first
// executable match in PATH (the child's PATH when its environment sets one).
result<std::string> resolve_program(const spawn_options& opts) {
    const std::string& name = opts.argv.front();
    if (name.find('/') != std::string::npos) return name;
    std::string_view path = env_value(opts.env, "PATH");
    if (path.empty()) path = "/usr/local/bin:/usr/bin:/bin";
    while (true) {
        auto colon = path.find(':');
        std::string dir{path.substr(0, colon)};
        if (dir.empty()) dir = ".";
        auto candidate = dir + "/" + name;
        if (is_executable_file(candidate)) return candidate;
        if (colon == std::string_view::npos) break;
        path.remove_prefix(colon + 1);
    }
    return errno_code(ENOENT);
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // close-on-exec by default
#else
    errno = ENOSYS;
    return -1;
#endif
}

struct spawn_attributes {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    spawn_attributes() {
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawnattr_init(&attr);
    }
    ~spawn_attributes() {
        ::posix_spawn_file_actions_destroy(&actions);
        ::posix_spawnattr_destroy(&attr);
    }
    spawn_attributes(const spawn_attributes&) = delete;
    spawn_attributes& operator=(const spawn_attributes&) = delete;
};

}  // namespace

child_process::child_process(asio::any_io_executor ex, pid_t pid)
    : pid_{pid}, stdin_{ex}, stdout_{ex}, stderr_{ex}, pidfd_{ex} {}

result<std::unique_ptr<child_process>> child_process::spawn(asio::any_io_executor ex,
                                                            const spawn_options& opts) {
    if (opts.argv.empty() || opts.argv.front().empty()) return errno_code(EINVAL);
    ignore_sigpipe_once();
    auto program = resolve_program(opts);
    if (!program) return program.error();

    auto in = make_pipe(true);
    if (!in) return in.error();
    auto out = make_pipe(false);
    if (!out) return out.error();
    auto err = make_pipe(false);
    if (!err) return err.error();

    spawn_attributes sa;
    int rc = 0;
    rc = rc ? rc : ::posix_spawn_file_actions_adddup2(&sa.actions, in->read.get(), 0);
    rc = rc ? rc : ::posix_spawn_file_actions_adddup2(&sa.actions, out->write.get(), 1);
    rc = rc ? rc : ::posix_spawn_file_actions_adddup2(&sa.actions, err->write.get(), 2);
    if (!opts.cwd.empty())
        rc = rc ? rc : ::posix_spawn_file_actions_addchdir_np(&sa.actions, opts.cwd.c_str());
    rc = rc ? rc : ::posix_spawn_file_actions_addclosefrom_np(&sa.actions, 3);
    // Own process group (so a signal reaches grandchildren too), no blocked
    // signals, every signal at its default disposition.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    rc = rc ? rc
            : ::posix_spawnattr_setflags(
                  &sa.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = rc ? rc : ::posix_spawnattr_setpgroup(&sa.attr, 0);
    rc = rc ? rc : ::posix_spawnattr_setsigmask(&sa.attr, &none);
    rc = rc ? rc : ::posix_spawnattr_setsigdefault(&sa.attr, &all);
    if (rc != 0) return errno_code(rc);

    std::vector<char*> argv;
    for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : opts.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    pid_t pid = -1;
    rc = ::posix_spawn(&pid, program->c_str(), &sa.actions, &sa.attr, argv.data(), envp.data());
    if (rc != 0) return errno_code(rc);

    std::unique_ptr<child_process> child{new child_process{ex, pid}};
    boost::system::error_code ec;
    child->stdin_.assign(in->write.release(), ec);
    child->stdout_.assign(out->read.release(), ec);
    child->stderr_.assign(err->read.release(), ec);
    if (int pidfd = open_pidfd(pid); pidfd >= 0) child->pidfd_.assign(pidfd, ec);
    return child;  // the child's ends of the pipes close here
}

child_process::~child_process() {
    if (status_ || pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
}

asio::awaitable<void> child_process::wait_exit() {
    if (has_exited()) co_return;
    if (pidfd_.is_open()) {
        // A pidfd becomes readable when the process exits.
        co_await pidfd_.async_wait(asio::posix::stream_descriptor::wait_read, use_tuple);
        co_return;
    }
    // Kernels without pidfd_open (< 5.3): poll without reaping.
    asio::steady_timer tick{co_await asio::this_coro::executor};
    while (!has_exited()) {
        tick.expires_after(std::chrono::milliseconds{10});
        auto [ec] = co_await tick.async_wait(use_tuple);
        if (ec) co_return;
    }
}

bool child_process::has_exited() const noexcept {
    if (status_) return true;
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == pid_;
}

void child_process::kill_group(int sig) noexcept {
    // After reap() the group id may belong to someone else.
    if (!status_) ::kill(-pid_, sig);
}

std::optional<int> child_process::reap() noexcept {
    if (status_) return status_;
    int status = 0;
    pid_t r;
    do r = ::waitpid(pid_, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == pid_)
        status_ = status;
    else if (r < 0 && errno == ECHILD)
        status_ = -1;  // reaped by someone else: status unknown
    return status_;
}

void child_process::close_pipes() noexcept {
    boost::system::error_code ec;
    stdin_.close(ec);
    stdout_.close(ec);
    stderr_.close(ec);
}

std::string signal_name(int sig) {
    if (const char* abbrev = ::sigabbrev_np(sig)) return std::string{"SIG"} + abbrev;
    return "signal " + std::to_string(sig);
}

}  // namespace spool::handlers
