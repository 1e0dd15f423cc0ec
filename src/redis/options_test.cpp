// src/redis/options_test.cpp
#include "redis/options.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

using spool::redis::connection_options;
using spool::redis::describe;
using spool::redis::parse_url;

namespace {

connection_options parse_ok(std::string_view url) {
    auto r = parse_url(url);
    EXPECT_TRUE(r.has_value()) << url;
    return r ? *r : connection_options{};
}

}  // namespace

TEST(Options, FullRedisUrl) {
    auto o = parse_ok("redis://alice:s3cret@redis.example:6380/2");
    EXPECT_EQ(o.host, "redis.example");
    EXPECT_EQ(o.port, 6380);
    EXPECT_EQ(o.user, "alice");
    EXPECT_EQ(o.password, "s3cret");
    EXPECT_EQ(o.db, 2);
    EXPECT_FALSE(o.tls.enabled);
    EXPECT_TRUE(o.unix_path.empty());
}

TEST(Options, DefaultsWhenOmitted) {
    auto o = parse_ok("redis://127.0.0.1");
    EXPECT_EQ(o.host, "127.0.0.1");
    EXPECT_EQ(o.port, 6379);
    EXPECT_EQ(o.db, 0);
    EXPECT_TRUE(o.user.empty());
    EXPECT_TRUE(o.password.empty());
    EXPECT_EQ(parse_ok("redis://h/").db, 0);
}

TEST(Options, PasswordOnly) {
    auto o = parse_ok("redis://:pw@host");
    EXPECT_TRUE(o.user.empty());
    EXPECT_EQ(o.password, "pw");
    EXPECT_EQ(o.host, "host");
}

TEST(Options, PercentDecodesCredentials) {
    auto o = parse_ok("redis://us%40er:p%3Aw%2F%25d@host:1/0");
    EXPECT_EQ(o.user, "us@er");
    EXPECT_EQ(o.password, "p:w/%d");
}

TEST(Options, HostPortWithoutScheme) {
    // The original deployment's REDIS_URL=localhost:6379.
    auto o = parse_ok("localhost:6379");
    EXPECT_EQ(o.host, "localhost");
    EXPECT_EQ(o.port, 6379);
    auto bare = parse_ok("cache");
    EXPECT_EQ(bare.host, "cache");
    EXPECT_EQ(bare.port, 6379);
    EXPECT_EQ(parse_ok("  10.0.0.5:7000 ").port, 7000);
}

TEST(Options, Ipv6Host) {
    auto o = parse_ok("redis://[::1]:7001/3");
    EXPECT_EQ(o.host, "::1");
    EXPECT_EQ(o.port, 7001);
    EXPECT_EQ(o.db, 3);
    EXPECT_EQ(describe(o), "redis://[::1]:7001/3");
}

TEST(Options, TlsUrl) {
    auto o = parse_ok("rediss://:pw@cache.internal:6390/1?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem");
    EXPECT_TRUE(o.tls.enabled);
    EXPECT_TRUE(o.tls.verify_peer);
    EXPECT_EQ(o.tls.server_name, "");  // the host connected to is checked: cache.internal here
    EXPECT_EQ(o.tls.ca_file, "/etc/ca.pem");
    EXPECT_EQ(o.tls.cert_file, "/c.pem");
    EXPECT_EQ(o.tls.key_file, "/k.pem");
    EXPECT_EQ(o.db, 1);
    EXPECT_FALSE(parse_ok("rediss://h?tls_verify=0").tls.verify_peer);
}

TEST(Options, UnixSocket) {
    auto o = parse_ok("unix:///var/run/redis/redis.sock?db=4");
    EXPECT_EQ(o.unix_path, "/var/run/redis/redis.sock");
    EXPECT_EQ(o.db, 4);
    EXPECT_EQ(parse_ok("unix:///tmp/r.sock").db, 0);
    auto auth = parse_ok("unix://:pw@/tmp/r.sock");
    EXPECT_EQ(auth.password, "pw");
    EXPECT_EQ(auth.unix_path, "/tmp/r.sock");
}

TEST(Options, DbQueryParameter) { EXPECT_EQ(parse_ok("redis://h:1?db=7").db, 7); }

TEST(Options, Errors) {
    for (const char* bad :
         {"", "   ", "http://host", "redis://host:0", "redis://host:65536", "redis://host:abc",
          "redis://host/x", "redis://host/-1", "redis://host/1/2", "redis://host?db=x",
          "redis://host?tls_verify=maybe", "redis://host?unknown=1", "unix://", "unix:///",
          "unix://host/path", "redis://:pw@", "rediss://h?cert=/c.pem", "redis://host:"}) {
        auto r = parse_url(bad);
        EXPECT_FALSE(r.has_value()) << "accepted: '" << bad << "'";
        if (!r) {
            EXPECT_EQ(r.error(), spool::errc::invalid_argument) << bad;
        }
    }
}

TEST(Options, DescribeMasksPassword) {
    EXPECT_EQ(describe(parse_ok("redis://user:secret@host:6379/0")), "redis://user:***@host:6379/0");
    EXPECT_EQ(describe(parse_ok("redis://:secret@host")), "redis://:***@host:6379/0");
    EXPECT_EQ(describe(parse_ok("redis://host:1/5")), "redis://host:1/5");
    EXPECT_EQ(describe(parse_ok("rediss://h")), "rediss://h:6379/0");
    EXPECT_EQ(describe(parse_ok("unix:///tmp/r.sock?db=2")), "unix:///tmp/r.sock?db=2");
    auto text = describe(parse_ok("redis://u:hunter2@h"));
    EXPECT_EQ(text.find("hunter2"), std::string::npos);
}

TEST(Options, DescribeRoundTrips) {
    for (const char* url : {"redis://h:6379/0", "rediss://h:7000/3", "unix:///tmp/x.sock?db=1"}) {
        auto o = parse_ok(url);
        EXPECT_EQ(describe(o), url);
        auto again = parse_ok(describe(o));
        EXPECT_EQ(again.host, o.host);
        EXPECT_EQ(again.port, o.port);
        EXPECT_EQ(again.db, o.db);
        EXPECT_EQ(again.unix_path, o.unix_path);
    }
}

using spool::redis::cluster_mode;
using spool::redis::endpoint;

TEST(Options, HostListForClusterSeeds) {
    auto o = parse_ok("redis://:pw@10.0.0.1:7000,10.0.0.2:7001,[::1]/0?cluster=1");
    EXPECT_EQ(o.host, "10.0.0.1");
    EXPECT_EQ(o.port, 7000);
    ASSERT_EQ(o.hosts.size(), 3u);
    EXPECT_EQ(o.hosts[1], (endpoint{"10.0.0.2", 7001}));
    EXPECT_EQ(o.hosts[2], (endpoint{"::1", 6379}));
    EXPECT_EQ(o.cluster, cluster_mode::on);
    EXPECT_EQ(o.password, "pw");
    EXPECT_EQ(describe(o), "redis://:***@10.0.0.1:7000,10.0.0.2:7001,[::1]:6379/0?cluster=1");
    EXPECT_EQ(parse_ok("redis://h:1").cluster, cluster_mode::detect);
    EXPECT_EQ(parse_ok("redis://h:1?cluster=0").cluster, cluster_mode::off);
    EXPECT_EQ(parse_ok("h1:7000,h2:7001").hosts.size(), 2u);
}

TEST(Options, SentinelUrl) {
    auto o = parse_ok("redis+sentinel://app:pw@s1:26380,s2/mymaster/2?sentinel_password=spw");
    EXPECT_EQ(o.sentinel_master, "mymaster");
    EXPECT_EQ(o.db, 2);
    EXPECT_EQ(o.user, "app");
    EXPECT_EQ(o.password, "pw");
    EXPECT_EQ(o.sentinel_password, "spw");
    ASSERT_EQ(o.hosts.size(), 2u);
    EXPECT_EQ(o.hosts[0], (endpoint{"s1", 26380}));
    EXPECT_EQ(o.hosts[1], (endpoint{"s2", 26379}));  // the sentinel port by default
    EXPECT_EQ(o.cluster, cluster_mode::off);
    EXPECT_EQ(describe(o), "redis+sentinel://app:***@s1:26380,s2:26379/mymaster/2");
    EXPECT_EQ(parse_ok("rediss+sentinel://s1/m").db, 0);
    EXPECT_TRUE(parse_ok("rediss+sentinel://s1/m").tls.enabled);
}

TEST(Options, HostListAndSentinelErrors) {
    for (const char* bad : {"redis://a:1,,b:2/0", "redis://a:1,/0", "redis://a:1,b:99999/0", "redis://a,b/c",
                            "redis+sentinel://s1", "redis+sentinel://s1/", "redis+sentinel://s1/m/x",
                            "redis+sentinel://s1/m?cluster=1", "redis://h?sentinel_password=x",
                            "redis://h/3?cluster=1", "unix://a,b/x.sock", "redis://h?cluster=maybe"})
        EXPECT_FALSE(parse_url(bad)) << bad;
}
