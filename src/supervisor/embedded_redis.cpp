// src/supervisor/embedded_redis.cpp
#include "supervisor/embedded_redis.hpp"

#include "util/log.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

namespace spool::supervisor {

namespace fs = std::filesystem;
using boost::system::error_code;

namespace {

constexpr auto poll_interval = std::chrono::milliseconds{20};

error_code sys_error(int e) { return error_code{e, boost::system::system_category()}; }

// A redis.conf string argument: double-quoted, with \ and " escaped.
std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::uint16_t free_loopback_port() {
    asio::io_context ctx;
    asio::ip::tcp::acceptor a{ctx, asio::ip::tcp::endpoint{asio::ip::make_address_v4("127.0.0.1"), 0}};
    return a.local_endpoint().port();
}

// Connects, sends PING and reads one line; true on +PONG. A Redis still loading
// its AOF answers -LOADING, which is not ready yet.
template <class Protocol>
asio::awaitable<bool> ping_over(typename Protocol::endpoint ep) {
    typename Protocol::socket s{co_await asio::this_coro::executor};
    auto [ec] = co_await s.async_connect(ep, use_tuple);
    if (ec) co_return false;
    static constexpr std::string_view ping = "PING\r\n";
    auto [wec, written] = co_await asio::async_write(s, asio::buffer(ping.data(), ping.size()), use_tuple);
    if (wec) co_return false;
    std::string reply;
    auto [rec, read] = co_await asio::async_read_until(s, asio::dynamic_buffer(reply), "\r\n", use_tuple);
    if (rec) co_return false;
    co_return reply.starts_with("+PONG");
}

bool process_alive(int pid) {
    if (::kill(pid, 0) != 0) return errno == EPERM;
    // A zombie still answers kill(0); it is as good as gone.
    std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
    std::string line;
    std::getline(stat, line);
    auto close_paren = line.rfind(')');
    return close_paren == std::string::npos || close_paren + 2 >= line.size() || line[close_paren + 2] != 'Z';
}

// True when `pid` is a redis-server working in `dir` (our leftover, not a stranger).
bool is_redis_in(int pid, const fs::path& dir) {
    std::string proc = "/proc/" + std::to_string(pid);
    std::ifstream comm_file{proc + "/comm"};
    std::string comm;
    std::getline(comm_file, comm);
    if (comm.find("redis") == std::string::npos) return false;
    std::error_code sec;
    auto cwd = fs::read_symlink(proc + "/cwd", sec);
    return !sec && fs::equivalent(cwd, dir, sec) && !sec;
}

}  // namespace

embedded_redis::embedded_redis(asio::any_io_executor ex, embedded_redis_options opts)
    : ex_{ex}, opts_{std::move(opts)}, tasks_{ex}, backoff_timer_{ex} {}

embedded_redis::~embedded_redis() {
    stopping_ = true;
    if (child_ && child_->running()) {
        // Blocking on purpose: the event loop may be gone. Redis flushes its AOF on SIGTERM.
        child_->signal(SIGTERM);
        auto deadline = std::chrono::steady_clock::now() + opts_.stop_timeout;
        while (!child_->try_reap() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds{10});
        if (child_->running())
            log::get("supervisor")->warn("embedded redis-server did not stop in time: SIGKILL");
        // child_process's destructor SIGKILLs and reaps what is left.
    }
    child_.reset();
    release_lock();
}

error_code embedded_redis::fail(error_code ec, std::string message) {
    last_error_ = std::move(message);
    return ec;
}

error_code embedded_redis::prepare_dir() {
    std::error_code sec;
    bool created = fs::create_directories(opts_.data_dir, sec);
    if (sec)
        return fail(sys_error(sec.value()),
                    "cannot create data dir " + opts_.data_dir.string() + ": " + sec.message());
    if (created) fs::permissions(opts_.data_dir, fs::perms::owner_all, sec);
    dir_ = fs::canonical(opts_.data_dir, sec);
    if (sec)
        return fail(sys_error(sec.value()),
                    "cannot resolve data dir " + opts_.data_dir.string() + ": " + sec.message());

    auto lock_path = dir_ / "spool.lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) {
        int e = errno;
        return fail(sys_error(e), "cannot open " + lock_path.string() + ": " + std::strerror(e));
    }
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[32] = {};
        [[maybe_unused]] auto n = ::pread(lock_fd_, buf, sizeof buf - 1, 0);
        ::close(lock_fd_);
        lock_fd_ = -1;
        if (e == EWOULDBLOCK) {
            std::string owner{buf};
            while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' ')) owner.pop_back();
            return fail(make_error_code(boost::system::errc::device_or_resource_busy),
                        "data dir " + dir_.string() + " is in use by another spool serve" +
                            (owner.empty() ? std::string{} : " (pid " + owner + ")") +
                            "; stop it, or use another --data-dir");
        }
        return fail(sys_error(e), "cannot lock " + lock_path.string() + ": " + std::strerror(e));
    }
    auto pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd_, 0) == 0) [[maybe_unused]]
        auto n = ::pwrite(lock_fd_, pid.data(), pid.size(), 0);
    return {};
}

void embedded_redis::release_lock() noexcept {
    if (lock_fd_ >= 0) {
        ::flock(lock_fd_, LOCK_UN);
        ::close(lock_fd_);
        lock_fd_ = -1;
    }
}

asio::awaitable<void> embedded_redis::stop_leftover() {
    std::ifstream pidfile{dir_ / "redis.pid"};
    int pid = 0;
    if (!(pidfile >> pid) || pid <= 1 || !process_alive(pid) || !is_redis_in(pid, dir_)) co_return;
    auto log = log::get("supervisor");
    log->warn("stopping a leftover redis-server (pid {}) of a previous run in {}", pid, dir_.string());
    ::kill(pid, SIGTERM);
    asio::steady_timer t{ex_};
    auto deadline = std::chrono::steady_clock::now() + opts_.stop_timeout;
    while (process_alive(pid)) {
        if (std::chrono::steady_clock::now() >= deadline) {
            log->warn("leftover redis-server (pid {}) ignored SIGTERM: SIGKILL", pid);
            ::kill(pid, SIGKILL);
            deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
        }
        t.expires_after(poll_interval);
        auto [ec] = co_await t.async_wait(use_tuple);
        if (ec) co_return;
    }
}

error_code embedded_redis::write_config() const {
    auto path = dir_ / "redis.conf";
    std::ofstream conf{path, std::ios::trunc};
    conf << "# Written by `spool serve` on every start of its embedded redis-server; edits are lost.\n"
         << "daemonize no\n"
         << "dir " << quoted(dir_.string()) << "\n"
         << "pidfile " << quoted((dir_ / "redis.pid").string()) << "\n"
         << "logfile " << quoted(log_path().string()) << "\n"
         << "appendonly yes\n"
         << "appendfsync everysec\n"
         // Every job has its own small event stream; Redis 7.0 preallocates a whole
         // node (4 KB by default) per stream. 1 KB cuts a retained job from ~4.3 KB
         // of stream memory to ~1.3 KB (docs/operations.md).
         << "stream-node-max-bytes 1024\n";
    if (!opts_.rdb_snapshots) conf << "save \"\"\n";
    if (opts_.use_tcp)
        conf << "bind 127.0.0.1\n"
             << "port " << port_ << "\n";
    else
        conf << "port 0\n"
             << "unixsocket " << quoted(socket_path().string()) << "\n"
             << "unixsocketperm 700\n";
    conf.close();
    if (!conf) return sys_error(EIO);
    return {};
}

asio::awaitable<bool> embedded_redis::answers_ping() {
    asio::steady_timer limit{ex_, std::chrono::seconds{1}};
    if (opts_.use_tcp) {
        asio::ip::tcp::endpoint ep{asio::ip::make_address_v4("127.0.0.1"), port_};
        auto r = co_await (ping_over<asio::ip::tcp>(ep) || limit.async_wait(use_tuple));
        co_return r.index() == 0 && std::get<0>(r);
    }
    asio::local::stream_protocol::endpoint ep{socket_path().string()};
    auto r = co_await (ping_over<asio::local::stream_protocol>(ep) || limit.async_wait(use_tuple));
    co_return r.index() == 0 && std::get<0>(r);
}

std::string embedded_redis::log_tail() const {
    std::ifstream in{log_path()};
    std::deque<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        lines.push_back(std::move(line));
        if (lines.size() > 3) lines.pop_front();
    }
    std::string out;
    for (auto& l : lines) out += (out.empty() ? "" : " | ") + l;
    return out;
}

asio::awaitable<error_code> embedded_redis::launch() {
    if (!opts_.use_tcp) {
        std::error_code sec;
        fs::remove(socket_path(), sec);  // stale: nothing answered on it
    }
    child_ = std::make_unique<child_process>(ex_);
    spawn_options so;
    so.argv = {program_path_, (dir_ / "redis.conf").string()};
    so.stdout_to_null = true;  // it logs to its logfile; config errors still reach stderr
    if (auto ec = child_->start(so))
        co_return fail(ec, "cannot start " + program_path_ + ": " + ec.message());

    asio::steady_timer t{ex_};
    auto deadline = std::chrono::steady_clock::now() + opts_.start_timeout;
    for (;;) {
        if (child_->try_reap()) {
            std::string tail = log_tail();
            co_return fail(make_error_code(boost::system::errc::no_such_process),
                           "redis-server exited during startup (" + child_->status()->describe() + ")" +
                               (tail.empty() ? std::string{} : ": " + tail) +
                               " [log: " + log_path().string() + "]");
        }
        if (stopping_) {
            co_await child_->terminate(opts_.stop_timeout);
            co_return fail(make_error_code(boost::system::errc::operation_canceled),
                           "stopped while starting");
        }
        if (co_await answers_ping()) co_return error_code{};
        if (std::chrono::steady_clock::now() >= deadline) {
            co_await child_->terminate(opts_.stop_timeout);
            co_return fail(make_error_code(boost::system::errc::timed_out),
                           "redis-server did not answer PING within " +
                               std::to_string(opts_.start_timeout.count()) + " ms (see " +
                               log_path().string() + ")");
        }
        t.expires_after(poll_interval);
        auto [ec] = co_await t.async_wait(use_tuple);
        if (ec) {
            co_await child_->terminate(opts_.stop_timeout);
            co_return fail(make_error_code(boost::system::errc::operation_canceled),
                           "cancelled while starting");
        }
    }
}

error_code embedded_redis::check_socket_path() {
    constexpr std::size_t max_path = sizeof(sockaddr_un::sun_path) - 1;
    auto sock = socket_path().string();
    if (sock.size() <= max_path) return {};
    return fail(make_error_code(boost::system::errc::filename_too_long),
                "the unix socket path " + sock + " is too long (max " + std::to_string(max_path) +
                    " bytes); use a shorter --data-dir");
}

error_code embedded_redis::socket_in_use() {
    auto sock = socket_path().string();
    return fail(make_error_code(boost::system::errc::device_or_resource_busy),
                "a Redis is already listening on " + sock +
                    " (not started by spool); stop it, or pass --redis unix://" + sock);
}

asio::awaitable<result<std::string>> embedded_redis::start() {
    if (running()) co_return url_;
    stopping_ = false;
    last_error_.clear();
    auto program = find_executable(opts_.program);
    if (!program)
        co_return fail(make_error_code(boost::system::errc::no_such_file_or_directory),
                       opts_.program +
                           " is not installed (not found on PATH). Install it with "
                           "`sudo apt-get install redis-server`, or pass --redis URL to use a running Redis");
    program_path_ = *program;
    if (auto ec = prepare_dir()) co_return ec;
    co_await stop_leftover();

    if (opts_.use_tcp) {
        port_ = free_loopback_port();
    } else {
        if (auto ec = check_socket_path()) {
            release_lock();
            co_return ec;
        }
        std::error_code sec;
        bool exists = fs::exists(socket_path(), sec);
        bool answers = false;
        if (exists) answers = co_await answers_ping();
        if (answers) {
            release_lock();
            co_return socket_in_use();
        }
    }
    if (auto ec = write_config()) {
        release_lock();
        co_return fail(ec, "cannot write " + (dir_ / "redis.conf").string());
    }
    if (auto ec = co_await launch()) {
        child_.reset();
        release_lock();
        co_return ec;
    }
    url_ = opts_.use_tcp ? "redis://127.0.0.1:" + std::to_string(port_) + "/0"
                         : "unix://" + socket_path().string();
    log::get("supervisor")
        ->info("embedded redis-server started (pid {}) at {}, data in {}", child_->pid(), url_,
               dir_.string());
    tasks_.spawn(monitor(), "embedded-redis-monitor");
    co_return url_;
}

asio::awaitable<void> embedded_redis::monitor() {
    auto log = log::get("supervisor");
    auto backoff = opts_.restart_backoff_initial;
    for (;;) {
        auto started = std::chrono::steady_clock::now();
        auto status = co_await child_->wait();
        if (!status || stopping_) co_return;
        // A long healthy run earns a fresh, short backoff.
        if (std::chrono::steady_clock::now() - started >= std::chrono::seconds{60})
            backoff = opts_.restart_backoff_initial;
        log->error("embedded redis-server (pid {}) exited unexpectedly ({}); restarting in {} ms",
                   child_->pid(), status->describe(), backoff.count());
        for (;;) {
            backoff_timer_.expires_after(backoff);
            auto [ec] = co_await backoff_timer_.async_wait(use_tuple);
            if (ec || stopping_) co_return;
            backoff = std::min(backoff * 2, opts_.restart_backoff_max);
            if (auto err = co_await launch(); !err) break;
            if (stopping_) co_return;
            log->error("embedded redis-server restart failed: {}; next try in {} ms", last_error_,
                       backoff.count());
        }
        ++restarts_;
        log->info("embedded redis-server restarted (pid {}) at {}", child_->pid(), url_);
    }
}

asio::awaitable<void> embedded_redis::stop() { co_await stop(opts_.stop_timeout); }

asio::awaitable<void> embedded_redis::stop(std::chrono::milliseconds grace) {
    if (!child_ && lock_fd_ < 0) co_return;
    stopping_ = true;
    backoff_timer_.cancel();
    if (child_) child_->signal(SIGTERM);
    // The monitor returns once the child has exited (or at once when it was waiting to restart it).
    bool done = co_await tasks_.wait(grace);
    if (!done) {
        log::get("supervisor")
            ->warn("embedded redis-server did not stop within {} ms: SIGKILL", grace.count());
        if (child_) child_->signal(SIGKILL);
        done = co_await tasks_.wait(std::chrono::seconds{5});
    }
    if (!done) {
        tasks_.cancel();
        co_await tasks_.wait(std::chrono::seconds{1});
    }
    if (child_ && child_->running()) co_await child_->terminate(grace);
    if (child_ && child_->status())
        log::get("supervisor")->info("embedded redis-server stopped ({})", child_->status()->describe());
    child_.reset();
    release_lock();
}

}  // namespace spool::supervisor
