// testing/redis_server.cpp
#include "testing/redis_server.hpp"

#include "testing/redis_cluster.hpp"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace spool::testing {

std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    std::uint16_t port = ntohs(addr.sin_port);
    ::close(fd);
    return port;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(interval);  // polling interval, not a fixed wait
    }
}

redis_server::redis_server(redis_server_options opts) : opts_{std::move(opts)} {
    char tmpl[] = "/tmp/spool-redis-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    port_ = opts_.port ? opts_.port : free_port();
    if (opts_.tls) {
        do tls_port_ = free_port();
        while (tls_port_ == port_);
        generate_certs();
    }
    start();
}

redis_server::~redis_server() {
    kill();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string redis_server::unix_path() const { return dir_ + "/redis.sock"; }

std::string redis_server::url() const {
    if (!cluster_url_.empty()) return cluster_url_;
    std::string auth = opts_.password.empty() ? "" : ":" + opts_.password + "@";
    return "redis://" + auth + "127.0.0.1:" + std::to_string(port_) + "/0";
}

void redis_server::generate_certs() {
    // A self-signed CA and a server certificate for 127.0.0.1 / localhost.
    std::string cmd = "cd '" + dir_ +
                      "' && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=spool-test-ca "
                      "-keyout ca.key -out ca.crt >/dev/null 2>&1 && "
                      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out "
                      "server.csr >/dev/null 2>&1 && "
                      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
                      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                      "-extfile ext.cnf -out server.crt >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl failed to make test certificates");
}

void redis_server::start() {
    if (pid_ > 0) return;
    std::ofstream conf{dir_ + "/redis.conf"};
    if (opts_.sentinel) {
        // A sentinel rewrites its config file: it must be its own, writable.
        conf << "bind 127.0.0.1\n"
             << "port " << port_ << "\n"
             << "dir " << dir_ << "\n"
             << "daemonize no\n"
             << "logfile " << dir_ << "/redis.log\n"
             << "protected-mode no\n";
        for (const auto& line : opts_.extra_conf) conf << line << "\n";
        conf.close();
    } else {
    conf << "bind 127.0.0.1\n"
         << "port " << port_ << "\n"
         << "dir " << dir_ << "\n"
         << "save \"\"\n"
         << "daemonize no\n"
         << "logfile " << dir_ << "/redis.log\n"
         << "protected-mode no\n";
    if (opts_.appendonly) conf << "appendonly yes\nappendfsync everysec\n";
    if (!opts_.password.empty()) conf << "requirepass " << opts_.password << "\n";
    if (opts_.unix_socket) conf << "unixsocket " << unix_path() << "\nunixsocketperm 700\n";
    if (opts_.tls) {
        conf << "tls-port " << tls_port_ << "\n"
             << "tls-cert-file " << dir_ << "/server.crt\n"
             << "tls-key-file " << dir_ << "/server.key\n"
             << "tls-ca-cert-file " << dir_ << "/ca.crt\n"
             << "tls-auth-clients no\n";
    }
    for (const auto& u : opts_.acl_users) conf << "user " << u << "\n";
    for (const auto& line : opts_.extra_conf) conf << line << "\n";
    conf.close();
    }

    std::string path = dir_ + "/redis.conf";
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        // A test binary killed by a timeout must not leave its server behind, nor
        // keep the runner's output pipe open through the server's inherited stdio.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        int devnull = ::open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            ::dup2(devnull, STDIN_FILENO);
            ::dup2(devnull, STDOUT_FILENO);
            ::dup2(devnull, STDERR_FILENO);
            if (devnull > STDERR_FILENO) ::close(devnull);
        }
        if (opts_.sentinel)
            ::execlp("redis-server", "redis-server", path.c_str(), "--sentinel", static_cast<char*>(nullptr));
        else
            ::execlp("redis-server", "redis-server", path.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    pid_ = pid;
    bool up = wait_until(
        [&] {
            redisContext* c = redisConnect("127.0.0.1", port_);
            bool ok = c && !c->err;
            if (ok && !opts_.password.empty()) {
                auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %s", opts_.password.c_str()));
                if (r) freeReplyObject(r);
            }
            if (ok) {
                auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
                ok = r && r->type == REDIS_REPLY_STATUS;
                if (r) freeReplyObject(r);
            }
            if (c) redisFree(c);
            return ok;
        },
        std::chrono::seconds{10});
    if (!up) {
        kill();
        std::ifstream log{dir_ + "/redis.log"};
        std::string line, last;
        while (std::getline(log, line))
            if (!line.empty()) last = line;
        throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) + ": " + last);
    }
}

void redis_server::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

void redis_server::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

redisContext* redis_server::connect_blocking() {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (!c || c->err) {
        if (c) redisFree(c);
        throw std::runtime_error("cannot connect to test redis on port " + std::to_string(port_));
    }
    if (!opts_.password.empty()) {
        auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %s", opts_.password.c_str()));
        if (r) freeReplyObject(r);
    }
    return c;
}

namespace {

void flatten(const redisReply* r, std::vector<std::string>& out) {
    switch (r->type) {
        case REDIS_REPLY_ARRAY:
            for (size_t i = 0; i < r->elements; ++i) flatten(r->element[i], out);
            break;
        case REDIS_REPLY_INTEGER: out.push_back(std::to_string(r->integer)); break;
        case REDIS_REPLY_NIL: out.emplace_back(); break;
        default: out.emplace_back(r->str, r->len); break;
    }
}

}  // namespace

std::vector<std::string> redis_server::cmd(const std::vector<std::string>& args) {
    redisContext* c = connect_blocking();
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    std::vector<std::string> out;
    if (!r) {
        redisFree(c);
        throw std::runtime_error("redis command failed");
    }
    if (r->type == REDIS_REPLY_ERROR) {
        std::string msg{r->str, r->len};
        freeReplyObject(r);
        redisFree(c);
        // Standing for a cluster: "MOVED <slot> <ip>:<port>" names the node to ask.
        if (!peers_.empty() && msg.starts_with("MOVED ")) {
            auto port = std::stoi(msg.substr(msg.rfind(':') + 1));
            for (auto* p : peers_)
                if (p != this && p->port() == port) return p->cmd(args);
        }
        throw std::runtime_error("redis error: " + msg);
    }
    flatten(r, out);
    freeReplyObject(r);
    redisFree(c);
    return out;
}

std::string redis_server::cmd_str(const std::vector<std::string>& args) {
    auto v = cmd(args);
    return v.empty() ? std::string{} : v.front();
}

long long redis_server::cmd_int(const std::vector<std::string>& args) {
    auto s = cmd_str(args);
    return s.empty() ? 0 : std::stoll(s);
}

void redis_server::flushall() {
    if (peers_.empty()) {
        cmd({"FLUSHALL"});
        return;
    }
    for (auto* p : peers_)
        if (p->running() && p->cmd_str({"ROLE"}) == "master") p->cmd({"FLUSHALL"});
}

void redis_server::stand_for_cluster(std::vector<redis_server*> nodes, std::string url) {
    peers_ = std::move(nodes);
    cluster_url_ = std::move(url);
}

std::string redis_server::info(const std::string& field) {
    auto text = cmd_str({"INFO", "all"});
    auto pos = text.find("\r\n" + field + ":");
    if (pos == std::string::npos) return {};
    pos += field.size() + 3;
    auto end = text.find("\r\n", pos);
    return text.substr(pos, end - pos);
}

bool RedisTest::clustered() {
    const char* v = std::getenv("SPOOL_TEST_REDIS");
    return v && std::string_view{v} == "cluster";
}

void RedisTest::SetUpTestSuite() {
    if (server_) return;
    if (clustered()) {
        auto c = std::make_shared<redis_cluster>(3, 0);
        std::vector<redis_server*> nodes;
        for (auto& n : c->nodes()) nodes.push_back(n.get());
        nodes.front()->stand_for_cluster(nodes, c->url());
        server_ = nodes.front();
        cluster_ = c;
        return;
    }
    own_ = std::make_unique<redis_server>();
    server_ = own_.get();
}

void RedisTest::TearDownTestSuite() {
    server_ = nullptr;
    own_.reset();
    cluster_.reset();
}

void RedisTest::SetUp() {
    if (!server_->running()) server_->start();
    server_->flushall();
}

}  // namespace spool::testing
