// src/redis/sentinel_redistest.cpp
// The connection behind real sentinels (1 master, 1 replica, 3 sentinels on
// loopback): it finds the master, moves with a SENTINEL FAILOVER and with a
// master killed by SIGKILL, and names the problem when the master name is unknown
// or no sentinel answers.
#include "redis/connection.hpp"
#include "redis/test_helpers.hpp"
#include "testing/redis_cluster.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

using namespace spool;
using namespace spool::redis;
using namespace std::chrono_literals;
using spool::redis::test::drive_until;
using spool::testing::sentinel_group;

namespace {

class SentinelTest : public ::testing::Test, protected test::io_owner {
protected:
    void TearDown() override { close_all(); }
    std::shared_ptr<connection> open_sentinel(const std::string& url) {
        auto c = open(test::fast(parse_url(url).value()));
        EXPECT_TRUE(run(c->wait_connected(10s))) << c->last_error();
        return c;
    }
    // INCRs `key` until it has worked `times` times after the call (failures while
    // the failover runs are expected); the last value, or -1.
    long long incr_until(const std::shared_ptr<connection>& c, const std::string& key, int times,
                         std::chrono::seconds within) {
        long long last = -1;
        int ok = 0;
        drive_until(
            ctx,
            [&] {
                auto r = run(c->exec(command{"INCR", key}, 1s), 3s);
                if (r && r->is_integer()) {
                    last = r->integer;
                    ++ok;
                }
                return ok >= times;
            },
            within);
        return ok >= times ? last : -1;
    }
};

}  // namespace

TEST_F(SentinelTest, ConnectsToTheMasterTheSentinelsName) {
    sentinel_group g{false};
    auto c = open_sentinel(g.url());
    auto r = run(c->exec(command{"SET", "where", "master"}));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->str, "OK");
    EXPECT_EQ(g.master().cmd_str({"GET", "where"}), "master");
}

TEST_F(SentinelTest, FollowsASentinelFailover) {
    sentinel_group g;
    auto c = open_sentinel(g.url());
    ASSERT_EQ(incr_until(c, "n", 1, 5s), 1);
    const auto new_port = g.replica().port();
    g.sentinels()[0]->cmd({"SENTINEL", "FAILOVER", sentinel_group::master_name});
    ASSERT_TRUE(spool::testing::wait_until([&] { return g.reported_master_port() == new_port; }, 20s));
    // The writes land on the promoted replica, through the same connection object.
    ASSERT_TRUE(drive_until(
        ctx,
        [&] {
            auto v = incr_until(c, "n", 1, 2s);
            return v > 0 && g.replica().cmd_str({"GET", "n"}) == std::to_string(v);
        },
        20s))
        << c->last_error();
}

TEST_F(SentinelTest, FollowsAMasterKilledBySigkill) {
    sentinel_group g;
    auto c = open_sentinel(g.url());
    ASSERT_EQ(incr_until(c, "k", 2, 5s), 2);
    // Let the replica have the writes before its master dies (WAIT 1 replica).
    ASSERT_TRUE(run(c->exec(command{"WAIT", 1, 2000})));
    g.master().kill();
    auto v = incr_until(c, "k", 1, 30s);
    ASSERT_GT(v, 2) << c->last_error();
    EXPECT_EQ(g.replica().cmd_str({"GET", "k"}), std::to_string(v));
    EXPECT_EQ(g.reported_master_port(), g.replica().port());
}

TEST(SentinelErrors, UnknownMasterNameIsNamed) {
    sentinel_group g{false};
    test::io_owner io;
    std::string url = g.url();
    url.replace(url.find(sentinel_group::master_name), std::string{sentinel_group::master_name}.size(),
                "nosuch");
    auto c = io.open(test::fast(parse_url(url).value()));
    EXPECT_TRUE(drive_until(
        io.ctx, [&] { return c->last_error().find("knows no master named \"nosuch\"") != std::string::npos; },
        10s))
        << c->last_error();
    EXPECT_FALSE(c->is_connected());
    io.close_all();
}

TEST(SentinelErrors, NoSentinelAnsweringIsNamed) {
    auto port = spool::testing::free_port();
    test::io_owner io;
    auto c =
        io.open(test::fast(parse_url("redis+sentinel://127.0.0.1:" + std::to_string(port) + "/m").value()));
    EXPECT_TRUE(drive_until(
        io.ctx,
        [&] {
            return c->last_error().find("sentinel 127.0.0.1:" + std::to_string(port)) != std::string::npos;
        },
        10s))
        << c->last_error();
    EXPECT_FALSE(io.run(c->exec(command{"PING"}, 200ms)));
    io.close_all();
}
