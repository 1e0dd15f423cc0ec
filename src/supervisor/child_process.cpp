// src/supervisor/child_process.cpp
#include "supervisor/child_process.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

extern char** environ;

namespace spool::supervisor {

namespace {

// glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++; the raw system calls are simpler.
int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int send_pidfd_signal(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Whether this kernel (and its seccomp policy) lets us open pidfds; probed once.
bool pidfd_supported() {
    static const bool supported = [] {
        int fd = open_pidfd(::getpid());
        if (fd < 0) return false;
        ::close(fd);
        return true;
    }();
    return supported;
}

bool is_executable_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
    std::vector<std::string> out;
    auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry{*e};
        bool replaced = false;
        for (const auto& x : extra)
            if (name_of(x) == name_of(entry)) replaced = true;
        if (!replaced) out.emplace_back(entry);
    }
    out.insert(out.end(), extra.begin(), extra.end());
    return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// Runs in the forked child: async-signal-safe calls only. Never returns.
[[noreturn]] void exec_child(const spawn_options& o, pid_t parent, const char* path, char** argv, char** envp,
                             int devnull, int err_fd, long max_fd) {
    auto fail = [err_fd](int err) {
        [[maybe_unused]] auto n = ::write(err_fd, &err, sizeof err);
        ::_exit(127);
    };
    if (o.parent_death_signal != 0) {
        if (::prctl(PR_SET_PDEATHSIG, o.parent_death_signal) != 0) fail(errno);
        // The parent may have died before prctl took effect.
        if (::getppid() != parent) ::_exit(1);
    }
    if (o.own_process_group) ::setpgid(0, 0);
    // Signal dispositions set to "ignore" and the blocked mask survive exec: reset both.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);  // fails harmlessly for KILL/STOP

    if (::dup2(devnull, STDIN_FILENO) < 0) fail(errno);
    if (o.stdout_to_null && ::dup2(devnull, STDOUT_FILENO) < 0) fail(errno);
    if (o.stderr_to_null && ::dup2(devnull, STDERR_FILENO) < 0) fail(errno);
    // Everything else the parent holds (listening sockets, Redis connections) stays
    // with the parent; err_fd is close-on-exec and reports an exec failure.
    auto close_from_to = [](unsigned lo, unsigned hi, long limit) {
        if (lo > hi) return;
        if (::close_range(lo, hi, 0) == 0) return;
        for (long fd = lo; fd <= static_cast<long>(hi) && fd < limit; ++fd) ::close(static_cast<int>(fd));
    };
    close_from_to(3, static_cast<unsigned>(err_fd) - 1, max_fd);
    close_from_to(static_cast<unsigned>(err_fd) + 1, ~0U, max_fd);

    ::execve(path, argv, envp);
    fail(errno);
    ::_exit(127);
}

}  // namespace

std::string exit_status::describe() const {
    if (signal != 0) {
        const char* abbrev = ::sigabbrev_np(signal);
        return "signal " + std::to_string(signal) +
               (abbrev ? std::string{" (SIG"} + abbrev + ")" : std::string{});
    }
    if (code < 0) return "unknown exit status";
    return "exit code " + std::to_string(code);
}

exit_status exit_status::from_wait_status(int status) noexcept {
    exit_status s;
    if (WIFEXITED(status))
        s.code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        s.signal = WTERMSIG(status);
    return s;
}

std::optional<std::string> find_executable(const std::string& name) {
    if (name.empty()) return std::nullopt;
    if (name.find('/') != std::string::npos) {
        if (!is_executable_file(name)) return std::nullopt;
        if (name.front() == '/') return name;
        char cwd[4096];
        if (!::getcwd(cwd, sizeof cwd)) return std::nullopt;
        return std::string{cwd} + "/" + name;
    }
    const char* path_env = std::getenv("PATH");
    std::string_view path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    while (!path.empty()) {
        auto colon = path.find(':');
        auto dir = path.substr(0, colon);
        path = colon == std::string_view::npos ? std::string_view{} : path.substr(colon + 1);
        std::string candidate = std::string{dir.empty() ? "." : dir} + "/" + name;
        if (is_executable_file(candidate)) return candidate;
    }
    return std::nullopt;
}

struct child_process::waiter {
    int pidfd = -1;
    std::optional<asio::signal_set> sigchld;  // only where pidfds are unavailable

    ~waiter() {
        if (pidfd >= 0) ::close(pidfd);
    }
};

child_process::child_process(asio::any_io_executor ex) : ex_{std::move(ex)} {}

child_process::~child_process() {
    if (running()) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
    }
}

boost::system::error_code child_process::start(const spawn_options& opts) {
    using boost::system::error_code;
    using boost::system::system_category;
    if (pid_ > 0 || opts.argv.empty()) return make_error_code(boost::system::errc::invalid_argument);
    auto path = find_executable(opts.argv.front());
    if (!path) return make_error_code(boost::system::errc::no_such_file_or_directory);

    // Everything the child needs is prepared before fork: after it, only
    // async-signal-safe calls are allowed (other threads may hold malloc's lock).
    std::vector<std::string> args = opts.argv;
    auto argv = c_strings(args);
    std::vector<std::string> env = merged_environment(opts.env);
    auto envp = c_strings(env);
    long max_fd = ::sysconf(_SC_OPEN_MAX);
    if (max_fd <= 0 || max_fd > 65536) max_fd = 65536;

    auto w = std::make_unique<waiter>();
    // Without pidfds the SIGCHLD handler must be in place before the child can exit.
    if (!pidfd_supported()) w->sigchld.emplace(ex_, SIGCHLD);

    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) return error_code{errno, system_category()};
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        int e = errno;
        ::close(devnull);
        return error_code{e, system_category()};
    }
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        int e = errno;
        ::close(devnull);
        ::close(err_pipe[0]);
        ::close(err_pipe[1]);
        return error_code{e, system_category()};
    }
    if (pid == 0)
        exec_child(opts, parent, path->c_str(), argv.data(), envp.data(), devnull, err_pipe[1], max_fd);

    ::close(devnull);
    ::close(err_pipe[1]);
    // EOF means exec succeeded (the pipe closed on exec); an int is the child's errno.
    int child_errno = 0;
    ssize_t n;
    do n = ::read(err_pipe[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    ::close(err_pipe[0]);
    if (n == static_cast<ssize_t>(sizeof child_errno)) {
        int st = 0;
        while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        return error_code{child_errno, system_category()};
    }

    pid_ = pid;
    if (!w->sigchld) {
        w->pidfd = open_pidfd(pid);
        // Should not happen after a successful probe; a 1 s poll keeps us correct.
        if (w->pidfd < 0) w->sigchld.emplace(ex_, SIGCHLD);
    }
    waiter_ = std::move(w);
    return {};
}

void child_process::signal(int sig) noexcept {
    if (!running()) return;
    // With a pidfd the signal can never reach a recycled pid.
    if (waiter_ && waiter_->pidfd >= 0) {
        if (send_pidfd_signal(waiter_->pidfd, sig) == 0 || errno != ENOSYS) return;
    }
    ::kill(pid_, sig);
}

bool child_process::try_reap() noexcept {
    if (pid_ <= 0) return false;
    if (status_) return true;
    int st = 0;
    pid_t r;
    do r = ::waitpid(pid_, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    // r < 0 (ECHILD) means someone else reaped it: gone, status unknown.
    status_ = r > 0 ? exit_status::from_wait_status(st) : exit_status{};
    if (waiter_ && waiter_->pidfd >= 0) {
        ::close(waiter_->pidfd);
        waiter_->pidfd = -1;
    }
    return true;
}

asio::awaitable<result<exit_status>> child_process::wait() {
    if (pid_ <= 0) co_return make_error_code(boost::system::errc::no_child_process);
    for (;;) {
        if (try_reap()) co_return *status_;
        if (waiter_->pidfd >= 0) {
            // A fresh registration each time: epoll is edge-triggered in Asio, and a
            // pidfd becomes readable exactly once, so an old registration could
            // have consumed the edge while no wait was pending.
            int fd = ::dup(waiter_->pidfd);
            if (fd < 0) co_return boost::system::error_code{errno, boost::system::system_category()};
            asio::posix::stream_descriptor sd{ex_, fd};
            auto [ec] = co_await sd.async_wait(asio::posix::descriptor_base::wait_read, use_tuple);
            if (ec) co_return ec;
        } else if (waiter_->sigchld) {
            auto [ec, sig] = co_await waiter_->sigchld->async_wait(use_tuple);
            if (ec) co_return ec;
        } else {
            co_return make_error_code(boost::system::errc::no_child_process);
        }
    }
}

asio::awaitable<exit_status> child_process::terminate(std::chrono::steady_clock::duration grace) {
    if (pid_ <= 0) co_return exit_status{};
    if (try_reap()) co_return *status_;
    signal(SIGTERM);
    asio::steady_timer deadline{ex_, grace};
    auto first = co_await (wait() || deadline.async_wait(use_tuple));
    if (first.index() == 0) {
        auto& r = std::get<0>(first);
        if (r) co_return *r;
    }
    if (try_reap()) co_return *status_;
    signal(SIGKILL);
    auto r = co_await wait();
    if (r) co_return *r;
    co_return exit_status{};
}

}  // namespace spool::supervisor
