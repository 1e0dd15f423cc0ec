// src/redis/script_redistest.cpp
#include "redis/script.hpp"
#include "redis/test_helpers.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

using namespace spool;
using namespace spool::redis;
using namespace std::chrono_literals;

namespace {

class ScriptTest : public spool::testing::RedisTest, protected test::io_owner {
protected:
    void SetUp() override {
        RedisTest::SetUp();
        redis().cmd({"SCRIPT", "FLUSH"});
        conn = open(test::options_for(redis()));
    }
    void TearDown() override { close_all(); }
    std::shared_ptr<connection> conn;
};

const script add{"return redis.call('INCRBY', KEYS[1], ARGV[1])"};

}  // namespace

TEST_F(ScriptTest, Sha1MatchesRedis) {
    EXPECT_EQ(add.sha1(), redis().cmd_str({"SCRIPT", "LOAD", add.source()}));
    EXPECT_EQ(add.sha1().size(), 40u);
}

TEST_F(ScriptTest, EvalshaCommandShape) {
    auto cmd = add.evalsha_command({"k1", "k2"}, {"a1"});
    std::vector<std::string> want{"EVALSHA", add.sha1(), "2", "k1", "k2", "a1"};
    EXPECT_EQ(cmd.args(), want);
}

TEST_F(ScriptTest, LoadsAndRetriesOnNoscript) {
    auto r = run(add.eval(*conn, {"n"}, {"5"}));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->integer, 5);
    EXPECT_EQ(redis().cmd_str({"SCRIPT", "EXISTS", add.sha1()}), "1");

    // Cached: one EVALSHA only.
    auto before = conn->stats().commands;
    EXPECT_EQ(run(add.eval(*conn, {"n"}, {"1"}))->integer, 6);
    EXPECT_EQ(conn->stats().commands, before + 1);

    // Redis forgets every script: the next eval loads it again.
    redis().cmd({"SCRIPT", "FLUSH"});
    auto again = run(add.eval(*conn, {"n"}, {"1"}));
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->integer, 7);
    EXPECT_EQ(redis().cmd_int({"GET", "n"}), 7);
}

TEST_F(ScriptTest, ScriptErrorsStayErrorReplies) {
    script boom{"return redis.error_reply('boom')"};
    auto r = run(boom.eval(*conn, {}, {}));
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->is_error());
    EXPECT_NE(r->str.find("boom"), std::string::npos) << r->str;

    redis().cmd({"SET", "s", "text"});
    auto runtime = run(add.eval(*conn, {"s"}, {"1"}));
    ASSERT_TRUE(runtime.has_value());
    EXPECT_TRUE(runtime->is_error());

    script broken{"return ((("};
    auto compile = run(broken.eval(*conn, {}, {}));
    ASSERT_TRUE(compile.has_value());
    EXPECT_TRUE(compile->is_error());
    EXPECT_EQ(compile->str.find("NOSCRIPT"), std::string::npos) << compile->str;
}

TEST_F(ScriptTest, ConnectionErrorsPassThrough) {
    conn->stop();
    auto r = run(add.eval(*conn, {"n"}, {"1"}));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::shutting_down);
}
