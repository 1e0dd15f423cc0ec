// src/redis/cluster_redistest.cpp
// The connection against a real Redis Cluster (3 masters, 3 replicas on loopback):
// routing by slot, detection from INFO cluster, MOVED after a slot moves, ASK
// during a migration, pub/sub across nodes, a master killed under traffic, and
// clear errors for a cluster that is not one or does not cover every slot.
#include "redis/cluster_slots.hpp"
#include "redis/connection.hpp"
#include "redis/test_helpers.hpp"
#include "testing/redis_cluster.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

#include <set>

using namespace spool;
using namespace spool::redis;
using namespace std::chrono_literals;
using spool::redis::test::drive_until;
using spool::testing::redis_cluster;

namespace {

class ClusterTest : public ::testing::Test, protected test::io_owner {
protected:
    static void SetUpTestSuite() { cluster_ = new redis_cluster{3, 1}; }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }
    void TearDown() override { close_all(); }

    std::shared_ptr<connection> open_cluster(std::string url = {}) {
        auto o = test::fast(parse_url(url.empty() ? cluster_->url() : url).value());
        auto c = open(o);
        EXPECT_TRUE(run(c->wait_connected(10s))) << c->last_error();
        return c;
    }
    reply exec_ok(const std::shared_ptr<connection>& c, command cmd) {
        auto r = run(c->exec(std::move(cmd)), 10s);
        EXPECT_TRUE(r) << (r ? "" : r.error().message());
        return r ? *r : reply{};
    }

    static redis_cluster* cluster_;
};
redis_cluster* ClusterTest::cluster_ = nullptr;

}  // namespace

TEST_F(ClusterTest, SlotsAgreeWithTheServer) {
    for (const char* key : {"foo", "spool:{q:default}:queued", "job:0190-abc", "{}", "a{b}c"})
        EXPECT_EQ(cluster::slot_of(std::string_view{key}), cluster_->keyslot(key)) << key;
}

TEST_F(ClusterTest, RoutesEveryCommandToTheNodeOfItsSlot) {
    auto c = open_cluster();
    EXPECT_TRUE(c->is_cluster());
    std::set<int> masters;
    for (int i = 0; i < 60; ++i) {
        auto key = "route:" + std::to_string(i);
        masters.insert(cluster_->master_of(cluster_->keyslot(key)));
        EXPECT_EQ(exec_ok(c, command{"SET", key, i}).str, "OK");
    }
    EXPECT_EQ(masters.size(), 3u) << "the keys should span every master";
    for (int i = 0; i < 60; ++i) {
        auto key = "route:" + std::to_string(i);
        EXPECT_EQ(exec_ok(c, command{"GET", key}).str, std::to_string(i));
        // Each key lives on the master the cluster says serves its slot, and only there.
        auto& owner =
            *cluster_->nodes()[static_cast<std::size_t>(cluster_->master_of(cluster_->keyslot(key)))];
        EXPECT_EQ(owner.cmd_str({"GET", key}), std::to_string(i));
    }
    // A script goes where its first key lives.
    auto r = exec_ok(c, command{"EVAL", "return redis.call('GET', KEYS[1])", 1, "route:7"});
    EXPECT_EQ(r.str, "7");
}

TEST_F(ClusterTest, PipelinesSpanningNodesComeBackInOrder) {
    auto c = open_cluster();
    std::vector<command> cmds;
    for (int i = 0; i < 30; ++i) cmds.push_back(command{"SET", "pipe:" + std::to_string(i), i * 10});
    cmds.emplace_back("PING");
    for (int i = 0; i < 30; ++i) cmds.push_back(command{"GET", "pipe:" + std::to_string(i)});
    auto r = run(c->exec_many(std::move(cmds)), 10s);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->size(), 61u);
    EXPECT_EQ((*r)[30].str, "PONG");
    for (int i = 0; i < 30; ++i)
        EXPECT_EQ((*r)[31 + static_cast<std::size_t>(i)].str, std::to_string(i * 10));
}

TEST_F(ClusterTest, FindsOutItIsAClusterFromOneSeed) {
    auto& seed = *cluster_->nodes()[0];
    auto c = open_cluster("redis://127.0.0.1:" + std::to_string(seed.port()) + "/0");
    EXPECT_TRUE(c->is_cluster());
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(exec_ok(c, command{"SET", "detect:" + std::to_string(i), i}).str, "OK");
    EXPECT_EQ(exec_ok(c, command{"GET", "detect:13"}).str, "13");
}

TEST_F(ClusterTest, FollowsASlotThatMoved) {
    auto c = open_cluster();
    const std::string key = "moving:{m1}";
    exec_ok(c, command{"SET", key, "before"});
    int slot = cluster_->keyslot(key);
    int from = cluster_->master_of(slot);
    int to = cluster_->other_master(from);
    ASSERT_GE(to, 0);
    cluster_->move_slot(slot, to);
    ASSERT_EQ(cluster_->master_of(slot), to);
    // The client still maps the slot to the old master: MOVED, then the right node.
    EXPECT_EQ(exec_ok(c, command{"GET", key}).str, "before");
    EXPECT_EQ(exec_ok(c, command{"SET", key, "after"}).str, "OK");
    EXPECT_EQ(cluster_->nodes()[static_cast<std::size_t>(to)]->cmd_str({"GET", key}), "after");
    cluster_->move_slot(slot, from);
}

TEST_F(ClusterTest, AsksTheImportingNodeDuringAMigration) {
    auto c = open_cluster();
    const std::string key = "asking:{a1}";
    int slot = cluster_->keyslot(key);
    int from = cluster_->master_of(slot);
    int to = cluster_->other_master(from);
    ASSERT_GE(to, 0);
    auto& src = *cluster_->nodes()[static_cast<std::size_t>(from)];
    auto& dst = *cluster_->nodes()[static_cast<std::size_t>(to)];
    auto s = std::to_string(slot);
    dst.cmd({"CLUSTER", "SETSLOT", s, "IMPORTING", src.cmd_str({"CLUSTER", "MYID"})});
    src.cmd({"CLUSTER", "SETSLOT", s, "MIGRATING", dst.cmd_str({"CLUSTER", "MYID"})});
    // A new key in a migrating slot: the source answers ASK, the target takes it after ASKING.
    EXPECT_EQ(exec_ok(c, command{"SET", key, "asked"}).str, "OK");
    cluster_->assign_slot(slot, to);
    EXPECT_EQ(dst.cmd_str({"GET", key}), "asked");
    cluster_->move_slot(slot, from);
    EXPECT_EQ(exec_ok(c, command{"GET", key}).str, "asked");
}

TEST_F(ClusterTest, PubSubReachesSubscribersOnAnyNode) {
    auto c = open_cluster();
    auto sub = open_subscriber(test::fast(parse_url(cluster_->url()).value()));
    sub->subscribe({"cluster-news"});
    ASSERT_TRUE(drive_until(
        ctx, [&] { return sub->is_connected(); }, 10s));
    // Published until the subscription is in place (SUBSCRIBE races the first PUBLISH).
    std::optional<message> got;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto m = co_await sub->receive();
            if (m) got = *m;
        },
        asio::detached);
    ASSERT_TRUE(drive_until(
        ctx,
        [&] {
            if (got) return true;
            run(c->exec(command{"PUBLISH", "cluster-news", "hello"}));
            return got.has_value();
        },
        10s));
    EXPECT_EQ(got->payload, "hello");
}

TEST(ClusterErrors, NotAClusterNamesTheProblem) {
    spool::testing::redis_server plain;
    test::io_owner io;
    auto c = io.open(
        test::fast(parse_url("redis://127.0.0.1:" + std::to_string(plain.port()) + "/0?cluster=1").value()));
    EXPECT_FALSE(io.run(c->wait_connected(2s)));
    EXPECT_NE(c->last_error().find("cluster support disabled"), std::string::npos) << c->last_error();
    auto r = io.run(c->exec(command{"GET", "x"}, 300ms));
    EXPECT_FALSE(r);
    io.close_all();
}

TEST(ClusterErrors, UncoveredSlotsAreNamed) {
    spool::testing::redis_server_options o;
    o.extra_conf = {"cluster-enabled yes", "cluster-config-file nodes.conf"};
    o.port = spool::testing::free_node_port();
    spool::testing::redis_server node{o};
    node.cmd({"CLUSTER", "ADDSLOTSRANGE", "0", "8000"});
    test::io_owner io;
    auto c = io.open(
        test::fast(parse_url("redis://127.0.0.1:" + std::to_string(node.port()) + "/0?cluster=1").value()));
    EXPECT_TRUE(drive_until(
        io.ctx, [&] { return c->last_error().find("8001-16383") != std::string::npos; }, 5s))
        << c->last_error();
    EXPECT_FALSE(c->is_connected());
    io.close_all();
}

// Last: it kills a master (the suite's cluster is not used after it).
TEST_F(ClusterTest, CarriesOnWhenAMasterIsKilled) {
    auto c = open_cluster();
    const std::string key = "failover:{f1}";
    exec_ok(c, command{"SET", key, 0});
    int victim = cluster_->master_of(cluster_->keyslot(key));
    ASSERT_GE(victim, 0);
    cluster_->nodes()[static_cast<std::size_t>(victim)]->kill();
    // Writes keep being tried; once the replica is promoted they succeed again,
    // on the same connection object.
    int ok_after = 0;
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(drive_until(
        ctx,
        [&] {
            auto r = run(c->exec(command{"INCR", key}, 2s), 5s);
            if (r && r->is_integer()) ++ok_after;
            return ok_after >= 3;
        },
        30s))
        << c->last_error();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
    int promoted = cluster_->master_of(cluster_->keyslot(key));
    EXPECT_NE(promoted, victim);
    EXPECT_EQ(exec_ok(c, command{"GET", key}).str,
              cluster_->nodes()[static_cast<std::size_t>(promoted)]->cmd_str({"GET", key}));
}
