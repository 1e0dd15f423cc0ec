// src/redis/cluster_slots_test.cpp
#include "redis/cluster_slots.hpp"

#include <gtest/gtest.h>

namespace spool::redis::cluster {
namespace {

TEST(ClusterSlots, KeySlotsMatchRedis) {
    // Values from `CLUSTER KEYSLOT` of a real server.
    EXPECT_EQ(slot_of(std::string_view{"foo"}), 12182);
    EXPECT_EQ(slot_of(std::string_view{"bar"}), 5061);
    EXPECT_EQ(slot_of(std::string_view{"somekey"}), 11058);
    EXPECT_EQ(slot_of(std::string_view{"hello"}), 866);
}

TEST(ClusterSlots, HashTagsPickThePartInBraces) {
    EXPECT_EQ(slot_of(std::string_view{"spool:{q:default}:queued"}), slot_of(std::string_view{"q:default"}));
    EXPECT_EQ(slot_of(std::string_view{"a{foo}b{bar}"}), slot_of(std::string_view{"foo"}));
    // An empty tag or an unclosed brace: the whole key.
    EXPECT_NE(slot_of(std::string_view{"x{}foo"}), slot_of(std::string_view{""}));
    EXPECT_EQ(slot_of(std::string_view{"{}"}), slot_of(std::string_view{"{}"}));
    EXPECT_NE(slot_of(std::string_view{"{foo"}), slot_of(std::string_view{"foo"}));
}

TEST(ClusterSlots, CommandSlotIsItsFirstKey) {
    EXPECT_EQ(slot_of(command{"HGET", "foo", "f"}), 12182);
    EXPECT_EQ(slot_of(command{"evalsha", "abc", 2, "bar", "foo", "arg"}), 5061);
    EXPECT_EQ(slot_of(command{"EVALSHA", "abc", 0, "arg"}), std::nullopt);
    EXPECT_EQ(slot_of(command{"XREAD", "COUNT", 1, "STREAMS", "hello", "0"}), 866);
    EXPECT_EQ(slot_of(command{"MEMORY", "USAGE", "foo"}), 12182);
    EXPECT_EQ(slot_of(command{"PUBLISH", "foo", "m"}), std::nullopt);
    EXPECT_EQ(slot_of(command{"script", "load", "return 1"}), std::nullopt);
    EXPECT_EQ(slot_of(command{"PING"}), std::nullopt);
}

TEST(ClusterSlots, Redirects) {
    auto m = parse_redirect("MOVED 3999 127.0.0.1:6381");
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->ask);
    EXPECT_EQ(m->slot, 3999);
    EXPECT_EQ(m->to, (endpoint{"127.0.0.1", 6381}));
    auto a = parse_redirect("ASK 12 [::1]:7000");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->ask);
    EXPECT_EQ(a->to, (endpoint{"::1", 7000}));
    auto empty_host = parse_redirect("MOVED 1 :7001");
    ASSERT_TRUE(empty_host);
    EXPECT_EQ(empty_host->to.host, "");
    for (const char* bad :
         {"ERR nope", "MOVED", "MOVED x 1.2.3.4:1", "MOVED 16384 h:1", "ASK 1 h", "MOVED 1 h:x"})
        EXPECT_FALSE(parse_redirect(bad)) << bad;
    EXPECT_TRUE(is_transient("TRYAGAIN Multiple keys request during rehashing of slot"));
    EXPECT_TRUE(is_transient("CLUSTERDOWN The cluster is down"));
    EXPECT_FALSE(is_transient("ERR unknown command"));
}

reply integer(long long v) {
    reply r;
    r.type = reply::kind::integer;
    r.integer = v;
    return r;
}
reply node(std::string host, long long port) {
    reply r;
    r.type = reply::kind::array;
    r.elements.push_back(reply::make_string(std::move(host)));
    r.elements.push_back(integer(port));
    r.elements.push_back(reply::make_string("0123abcd"));
    return r;
}
reply range(long long a, long long b, std::vector<reply> nodes) {
    reply r;
    r.type = reply::kind::array;
    r.elements.push_back(integer(a));
    r.elements.push_back(integer(b));
    for (auto& n : nodes) r.elements.push_back(std::move(n));
    return r;
}

TEST(ClusterSlots, ParsesClusterSlotsAndFindsGaps) {
    reply r;
    r.type = reply::kind::array;
    r.elements.push_back(range(0, 5460, {node("10.0.0.1", 7000), node("10.0.0.4", 7003)}));
    r.elements.push_back(range(5461, 10922, {node("", 7001)}));
    auto ranges = parse_slots(r, endpoint{"10.0.0.9", 7001});
    ASSERT_TRUE(ranges);
    ASSERT_EQ(ranges->size(), 2u);
    EXPECT_EQ((*ranges)[0].master, (endpoint{"10.0.0.1", 7000}));
    ASSERT_EQ((*ranges)[0].replicas.size(), 1u);
    EXPECT_EQ((*ranges)[1].master, (endpoint{"10.0.0.9", 7001}));  // empty address: the node asked
    EXPECT_EQ(uncovered(*ranges), "10923-16383");
    r.elements.push_back(range(10923, 16383, {node("10.0.0.3", 7002)}));
    EXPECT_EQ(uncovered(*parse_slots(r, endpoint{})), "");
    EXPECT_EQ(uncovered({}), "0-16383");

    reply bad = r;
    bad.elements.push_back(range(9, 3, {node("h", 1)}));  // first > last
    EXPECT_FALSE(parse_slots(bad, endpoint{}));
    EXPECT_FALSE(
        parse_slots(reply::make_string("ERR This instance has cluster support disabled", reply::kind::error),
                    endpoint{}));
}

}  // namespace
}  // namespace spool::redis::cluster
