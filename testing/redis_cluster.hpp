// testing/redis_cluster.hpp
// Real multi-server Redis set-ups for tests, on free loopback ports:
//   redis_cluster   a Redis Cluster of M masters with R replicas each
//                   (redis-server --cluster-enabled yes, redis-cli --cluster create),
//                   a 1 s node timeout so failovers take a couple of seconds;
//   sentinel_group  a master, one replica and three sentinels (quorum 2) watching it.
// Both wait until the set-up is healthy before returning, and kill every process
// in the destructor.
#pragma once

#include "testing/redis_server.hpp"

#include <memory>
#include <string>
#include <vector>

namespace spool::testing {

// Waits until every replica that `master` lists has its whole replication stream.
bool wait_replicas_caught_up(redis_server& master, std::chrono::milliseconds timeout);

// A port for a cluster node: at most 55535, with port + 10000 (its cluster bus) free too.
std::uint16_t free_node_port();

class redis_cluster {
public:
    explicit redis_cluster(int masters = 3, int replicas = 1);
    ~redis_cluster();

    std::vector<std::unique_ptr<redis_server>>& nodes() noexcept { return nodes_; }
    // redis://127.0.0.1:<p1>,127.0.0.1:<p2>,.../0?cluster=1 (every node a seed).
    std::string url() const;
    // The node serving `slot` now (asked of a live node), or -1.
    int master_of(int slot);
    // Slot of a key, asked of the cluster (CLUSTER KEYSLOT).
    int keyslot(const std::string& key);
    // Waits until every live node reports cluster_state:ok and agrees on the masters.
    bool wait_healthy(std::chrono::milliseconds timeout = std::chrono::seconds{20});
    // Moves `slot` to the master at node index `to` (CLUSTER SETSLOT + MIGRATE, keys included).
    void move_slot(int slot, int to);
    // Ends a migration: every master records `slot` as served by node `to`.
    void assign_slot(int slot, int to);
    bool is_master(int i);
    // A live master other than node `than` (-1 when there is none).
    int other_master(int than);
    // Waits until every replica of node `i` has all of its writes.
    bool wait_replicated(int i, std::chrono::milliseconds timeout = std::chrono::seconds{10});
    // Index of a live node, for cluster-wide questions.
    int any_live() const;

private:
    std::vector<std::unique_ptr<redis_server>> nodes_;
};

class sentinel_group {
public:
    // `for_failover`: also wait until the sentinels know the replica and each other
    // (a few seconds: they announce themselves every 2 s); without it, until each
    // one watches the master.
    explicit sentinel_group(bool for_failover = true);
    ~sentinel_group();

    redis_server& master() { return *data_[0]; }
    redis_server& replica() { return *data_[1]; }
    std::vector<std::unique_ptr<redis_server>>& sentinels() noexcept { return sentinels_; }
    static constexpr const char* master_name = "spoolmaster";
    // redis+sentinel://127.0.0.1:<s1>,...,127.0.0.1:<s3>/spoolmaster/0
    std::string url() const;
    // Waits until the replica has all of the master's writes.
    bool wait_replicated(std::chrono::milliseconds timeout = std::chrono::seconds{10});
    // The master's port as the sentinels report it now (0 when none answers).
    std::uint16_t reported_master_port();

private:
    std::vector<std::unique_ptr<redis_server>> data_;
    std::vector<std::unique_ptr<redis_server>> sentinels_;
};

}  // namespace spool::testing
