// testing/redis_cluster.cpp
#include "testing/redis_cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace spool::testing {

namespace {

std::string field(const std::string& info, const std::string& name) {
    auto pos = info.find(name + ":");
    if (pos == std::string::npos) return {};
    auto end = info.find_first_of("\r\n", pos);
    return info.substr(pos + name.size() + 1, end - pos - name.size() - 1);
}

bool bindable(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

std::uint16_t free_node_port() {
    // Below the kernel's ephemeral range, both of them: a port handed out for some
    // outgoing connection between our check and the server's bind would abort it.
    int low = 32768;
    if (std::ifstream range{"/proc/sys/net/ipv4/ip_local_port_range"}; range) range >> low;
    const int first = 10000, last = std::max(first + 100, low - 10001);
    static std::minstd_rand rng{static_cast<unsigned>(::getpid())};
    for (int i = 0; i < 1000; ++i) {
        auto p =
            static_cast<std::uint16_t>(first + static_cast<int>(rng() % static_cast<unsigned>(last - first)));
        if (bindable(p) && bindable(static_cast<std::uint16_t>(p + 10000))) return p;
    }
    throw std::runtime_error("no free port pair for a cluster node");
}

bool wait_replicas_caught_up(redis_server& master, std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
            auto info = master.cmd_str({"INFO", "replication"});
            auto offset = field(info, "master_repl_offset");
            int replicas =
                std::stoi(field(info, "connected_slaves").empty() ? "0" : field(info, "connected_slaves"));
            if (replicas == 0) return false;
            for (int i = 0; i < replicas; ++i) {
                auto line =
                    field(info, "slave" + std::to_string(i));  // ip=..,port=..,state=online,offset=N,lag=0
                auto at = line.find("offset=");
                if (at == std::string::npos) return false;
                auto end = line.find(',', at);
                if (line.substr(at + 7, end - at - 7) != offset) return false;
            }
            return true;
        },
        timeout);
}

redis_cluster::redis_cluster(int masters, int replicas) {
    const int n = masters * (1 + replicas);
    for (int i = 0; i < n; ++i) {
        redis_server_options o;
        o.extra_conf = {"cluster-enabled yes",
                        "cluster-config-file nodes.conf",
                        "cluster-node-timeout 1000",
                        "cluster-replica-validity-factor 0",
                        "appendonly no",
                        "repl-diskless-sync-delay 0"};
        o.port = free_node_port();
        nodes_.push_back(std::make_unique<redis_server>(o));
    }
    std::string cmd = "redis-cli --cluster create";
    for (auto& s : nodes_) cmd += " 127.0.0.1:" + std::to_string(s->port());
    cmd += " --cluster-replicas " + std::to_string(replicas) + " --cluster-yes >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("redis-cli --cluster create failed");
    if (!wait_healthy()) throw std::runtime_error("the test cluster did not become healthy");
}

redis_cluster::~redis_cluster() {
    for (auto& s : nodes_) s->kill();
}

std::string redis_cluster::url() const {
    std::string hosts;
    for (const auto& s : nodes_)
        hosts += (hosts.empty() ? "" : ",") + std::string{"127.0.0.1:"} + std::to_string(s->port());
    return "redis://" + hosts + "/0?cluster=1";
}

int redis_cluster::any_live() const {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i]->running()) return static_cast<int>(i);
    return -1;
}

bool redis_cluster::wait_healthy(std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
            for (auto& s : nodes_)
                if (s->running() && field(s->cmd_str({"CLUSTER", "INFO"}), "cluster_state") != "ok")
                    return false;
            // Every slot range is served by a live master.
            for (int probe : {0, 5460, 5461, 10922, 10923, 16383}) {
                int m = master_of(probe);
                if (m < 0 || !nodes_[static_cast<std::size_t>(m)]->running()) return false;
            }
            return true;
        },
        timeout);
}

int redis_cluster::master_of(int slot) {
    int live = any_live();
    if (live < 0) return -1;
    // CLUSTER NODES: "<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slots>..."
    auto text = nodes_[static_cast<std::size_t>(live)]->cmd_str({"CLUSTER", "NODES"});
    std::istringstream lines{text};
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream f{line};
        std::string id, addr, flags, master, ping, pong, epoch, state;
        f >> id >> addr >> flags >> master >> ping >> pong >> epoch >> state;
        if (flags.find("master") == std::string::npos || flags.find("fail") != std::string::npos) continue;
        std::string range;
        while (f >> range) {
            if (range.front() == '[') continue;  // a migration in progress
            auto dash = range.find('-');
            int a = std::stoi(range.substr(0, dash));
            int b = dash == std::string::npos ? a : std::stoi(range.substr(dash + 1));
            if (slot < a || slot > b) continue;
            auto colon = addr.find(':');
            auto at = addr.find('@');
            int port = std::stoi(addr.substr(colon + 1, at - colon - 1));
            for (std::size_t i = 0; i < nodes_.size(); ++i)
                if (nodes_[i]->port() == port) return static_cast<int>(i);
        }
    }
    return -1;
}

int redis_cluster::keyslot(const std::string& key) {
    return static_cast<int>(
        nodes_[static_cast<std::size_t>(any_live())]->cmd_int({"CLUSTER", "KEYSLOT", key}));
}

void redis_cluster::move_slot(int slot, int to) {
    int from = master_of(slot);
    if (from < 0 || from == to) return;
    auto& src = *nodes_[static_cast<std::size_t>(from)];
    auto& dst = *nodes_[static_cast<std::size_t>(to)];
    auto src_id = src.cmd_str({"CLUSTER", "MYID"});
    auto dst_id = dst.cmd_str({"CLUSTER", "MYID"});
    auto s = std::to_string(slot);
    dst.cmd({"CLUSTER", "SETSLOT", s, "IMPORTING", src_id});
    src.cmd({"CLUSTER", "SETSLOT", s, "MIGRATING", dst_id});
    for (;;) {
        auto keys = src.cmd({"CLUSTER", "GETKEYSINSLOT", s, "100"});
        if (keys.empty()) break;
        std::vector<std::string> mig{"MIGRATE", "127.0.0.1", std::to_string(dst.port()), "", "0",
                                     "5000",    "KEYS"};
        mig.insert(mig.end(), keys.begin(), keys.end());
        src.cmd(mig);
    }
    assign_slot(slot, to);
}

bool redis_cluster::wait_replicated(int i, std::chrono::milliseconds timeout) {
    return wait_replicas_caught_up(*nodes_[static_cast<std::size_t>(i)], timeout);
}

bool redis_cluster::is_master(int i) {
    auto& n = *nodes_[static_cast<std::size_t>(i)];
    return n.running() && n.cmd_str({"ROLE"}) == "master";
}

int redis_cluster::other_master(int than) {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i)
        if (i != than && is_master(i)) return i;
    return -1;
}

void redis_cluster::assign_slot(int slot, int to) {
    auto id = nodes_[static_cast<std::size_t>(to)]->cmd_str({"CLUSTER", "MYID"});
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (is_master(static_cast<int>(i)))
            nodes_[i]->cmd({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", id});
}

sentinel_group::sentinel_group(bool for_failover) {
    // No 5 s wait before a full sync (either node may be the master later).
    const std::string quick_sync = "repl-diskless-sync-delay 0";
    redis_server_options m;
    m.extra_conf = {quick_sync};
    data_.push_back(std::make_unique<redis_server>(m));
    redis_server_options r;
    r.extra_conf = {quick_sync, "replicaof 127.0.0.1 " + std::to_string(data_[0]->port())};
    data_.push_back(std::make_unique<redis_server>(r));
    if (!wait_until(
            [&] {
                return field(data_[1]->cmd_str({"INFO", "replication"}), "master_link_status") == "up";
            },
            std::chrono::seconds{10}))
        throw std::runtime_error("the test replica did not sync");
    for (int i = 0; i < 3; ++i) {
        redis_server_options s;
        s.sentinel = true;
        s.extra_conf = {"sentinel monitor " + std::string{master_name} + " 127.0.0.1 " +
                            std::to_string(data_[0]->port()) + " 2",
                        "sentinel down-after-milliseconds " + std::string{master_name} + " 1000",
                        "sentinel failover-timeout " + std::string{master_name} + " 5000",
                        "sentinel parallel-syncs " + std::string{master_name} + " 1"};
        sentinels_.push_back(std::make_unique<redis_server>(s));
    }
    // Ready when every sentinel knows the replica and the other sentinels.
    bool ready = wait_until(
        [&] {
            for (auto& s : sentinels_) {
                auto info = s->cmd({"SENTINEL", "MASTER", master_name});
                std::string replicas, others;
                for (std::size_t i = 0; i + 1 < info.size(); i += 2) {
                    if (info[i] == "num-slaves") replicas = info[i + 1];
                    if (info[i] == "num-other-sentinels") others = info[i + 1];
                }
                if (info.empty()) return false;
                if (for_failover && (replicas != "1" || others != "2")) return false;
            }
            return true;
        },
        std::chrono::seconds{20});
    if (!ready) throw std::runtime_error("the test sentinels did not find each other");
}

sentinel_group::~sentinel_group() {
    for (auto& s : sentinels_) s->kill();
    for (auto& s : data_) s->kill();
}

std::string sentinel_group::url() const {
    std::string hosts;
    for (const auto& s : sentinels_)
        hosts += (hosts.empty() ? "" : ",") + std::string{"127.0.0.1:"} + std::to_string(s->port());
    return "redis+sentinel://" + hosts + "/" + master_name + "/0";
}

bool sentinel_group::wait_replicated(std::chrono::milliseconds timeout) {
    return wait_replicas_caught_up(master(), timeout);
}

std::uint16_t sentinel_group::reported_master_port() {
    for (auto& s : sentinels_) {
        if (!s->running()) continue;
        auto r = s->cmd({"SENTINEL", "get-master-addr-by-name", master_name});
        if (r.size() == 2) return static_cast<std::uint16_t>(std::stoi(r[1]));
    }
    return 0;
}

}  // namespace spool::testing
