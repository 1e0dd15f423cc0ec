// testing/redis_server.hpp
// A real redis-server for tests: started on a free loopback port in a temporary
// directory, stopped in the destructor, restartable on the same port and data
// (to make "Redis went away" a real event). Also a small blocking hiredis client
// for checking keys, and the RedisTest fixture (one server per suite, FLUSHALL
// before each test). The server dies with the thread that started it (so a test
// killed by a timeout leaves none behind): start it from the test's main thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisContext;

namespace spool::testing {

struct redis_server_options {
    std::string password;                // requirepass
    std::vector<std::string> acl_users;  // lines for ACL SETUSER, e.g. "alice on >pw ~* &* +@all"
    bool tls = false;                    // also listen with TLS (generated self-signed cert)
    bool unix_socket = false;            // also listen on <dir>/redis.sock
    bool appendonly = false;
    std::vector<std::string> extra_conf;  // more redis.conf lines (cluster-enabled yes, replicaof ...)
    bool sentinel = false;                // run as a sentinel (redis-server --sentinel)
    std::uint16_t port = 0;               // 0: a free one
};

class redis_server {
public:
    explicit redis_server(redis_server_options opts = {});
    ~redis_server();
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    void start();  // throws std::runtime_error when it does not come up within 10 s
    void stop();   // SIGTERM and wait (SHUTDOWN NOSAVE semantics are not needed)
    void kill();   // SIGKILL
    bool running() const noexcept { return pid_ > 0; }

    std::uint16_t port() const noexcept { return port_; }      // plain TCP
    std::uint16_t tls_port() const noexcept { return tls_port_; }
    std::string unix_path() const;
    const std::string& dir() const noexcept { return dir_; }
    std::string ca_file() const { return dir_ + "/ca.crt"; }
    std::string url() const;  // redis://[:password@]127.0.0.1:port/0
    int pid() const noexcept { return pid_; }

    // Blocking client helpers (a fresh connection each, authenticated).
    std::vector<std::string> cmd(const std::vector<std::string>& args);  // flattens arrays; nil → ""
    std::string cmd_str(const std::vector<std::string>& args);           // first element or ""
    long long cmd_int(const std::vector<std::string>& args);
    void flushall();
    long long zcard(const std::string& key) { return cmd_int({"ZCARD", key}); }
    // Jobs leased in a queue's `active` set / `leases` hash: not the one entry each
    // holds to stay unpacked (docs/keys.md, "Leases").
    long long leased(const std::string& active_key) { return cmd_int({"ZCOUNT", active_key, "-inf", "(+inf"}); }
    long long lease_count(const std::string& leases_key) {
        return cmd_int({"HLEN", leases_key}) - cmd_int({"HEXISTS", leases_key, std::string(65, '~')});
    }
    std::string hget(const std::string& key, const std::string& field) { return cmd_str({"HGET", key, field}); }
    bool exists(const std::string& key) { return cmd_int({"EXISTS", key}) == 1; }
    // INFO field, e.g. info("used_cpu_sys").
    std::string info(const std::string& field);

    // Stands for a whole Redis Cluster (redis_cluster does this for its first node):
    // cmd() follows MOVED to the node that has the key, flushall() empties every
    // master, url() is the cluster's (every node a seed).
    void stand_for_cluster(std::vector<redis_server*> nodes, std::string url);
    bool is_cluster() const noexcept { return !peers_.empty(); }
    // The servers it stands for: every cluster node, or just itself.
    std::vector<redis_server*> servers() { return peers_.empty() ? std::vector<redis_server*>{this} : peers_; }

private:
    redisContext* connect_blocking();
    void generate_certs();

    redis_server_options opts_;
    std::vector<redis_server*> peers_;
    std::string cluster_url_;
    std::string dir_;
    std::uint16_t port_ = 0;
    std::uint16_t tls_port_ = 0;
    int pid_ = -1;
};

// Picks a loopback TCP port that was free a moment ago.
std::uint16_t free_port();
// Polls `pred` every `interval` until it holds or `timeout` passes; returns the last
// value. A longer interval suits predicates that are requests to a server under test.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds{5},
                std::chrono::milliseconds interval = std::chrono::milliseconds{2});

class RedisTest : public ::testing::Test {
public:
    static void SetUpTestSuite();
    static void TearDownTestSuite();
    void SetUp() override;

    static redis_server& redis() { return *server_; }
    // SPOOL_TEST_REDIS=cluster: the suite runs against a 3-master Redis Cluster
    // (redis() stands for it) instead of one redis-server.
    static bool clustered();

protected:
    static inline redis_server* server_ = nullptr;
    static inline std::unique_ptr<redis_server> own_;
    static inline std::shared_ptr<void> cluster_;  // a redis_cluster, when clustered()
};

}  // namespace spool::testing
