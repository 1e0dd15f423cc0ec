// src/redis/transport_redistest.cpp
// The ways to reach Redis: unix socket, password, ACL user, TLS (with and without
// a trusted CA). Each suite starts its own redis-server with the option it needs.
#include "redis/connection.hpp"
#include "redis/test_helpers.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

using namespace spool;
using namespace spool::redis;
using namespace std::chrono_literals;
using spool::testing::redis_server;
using spool::testing::redis_server_options;

namespace {

template <class Options>
class ServerSuite : public ::testing::Test, protected test::io_owner {
protected:
    static void SetUpTestSuite() { server = std::make_unique<redis_server>(Options::make()); }
    static void TearDownTestSuite() { server.reset(); }
    void SetUp() override {
        if (!server->running()) server->start();
    }
    void TearDown() override { close_all(); }

    // Expects a request to fail with not_connected quickly (not after its 5 s
    // deadline) and the reason to mention `why`.
    void expect_refused(connection_options o, const std::string& why) {
        auto c = open(test::fast(std::move(o)));
        auto start = std::chrono::steady_clock::now();
        auto r = run(c->exec(command{"PING"}, 3s));
        EXPECT_LT(std::chrono::steady_clock::now() - start, 2s)
            << "the failure should not wait for the deadline";
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error(), errc::not_connected);
        EXPECT_NE(c->last_error().find(why), std::string::npos) << c->last_error();
        EXPECT_FALSE(c->is_connected());
    }

    static inline std::unique_ptr<redis_server> server;
};

struct unix_server {
    static redis_server_options make() {
        redis_server_options o;
        o.unix_socket = true;
        return o;
    }
};
struct password_server {
    static redis_server_options make() {
        redis_server_options o;
        o.password = "s3cret";
        return o;
    }
};
struct acl_server {
    static redis_server_options make() {
        redis_server_options o;
        o.acl_users = {"alice on >wonder%land ~* &* +@all"};
        return o;
    }
};
struct tls_server {
    static redis_server_options make() {
        redis_server_options o;
        o.tls = true;
        return o;
    }
};

using UnixSocketTest = ServerSuite<unix_server>;
using PasswordTest = ServerSuite<password_server>;
using AclTest = ServerSuite<acl_server>;
using TlsTest = ServerSuite<tls_server>;

}  // namespace

TEST_F(UnixSocketTest, ExecOverUnixSocket) {
    auto o = test::fast(parse_url("unix://" + server->unix_path() + "?db=2").value());
    auto c = open(o);
    ASSERT_TRUE(run(c->exec(command{"SET", "k", "v"})).has_value());
    EXPECT_EQ(run(c->exec(command{"GET", "k"}))->str, "v");
    EXPECT_EQ(server->cmd_str({"INFO", "keyspace"}).find("db2:keys=1") != std::string::npos, true);
}

TEST_F(UnixSocketTest, MissingSocketIsNotConnected) {
    connection_options o = test::fast({});
    o.unix_path = server->dir() + "/nothing.sock";
    auto c = open(o);
    auto r = run(c->exec(command{"PING"}, 200ms));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::not_connected);
}

TEST_F(PasswordTest, AuthenticatesWithPassword) {
    auto c = open(test::options_for(*server));  // redis://:s3cret@127.0.0.1:port/0
    auto r = run(c->exec(command{"PING"}));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->str, "PONG");
    // AUTH is repeated after a reconnect.
    server->stop();
    server->start();
    EXPECT_EQ(run(c->exec(command{"PING"}, 5s))->str, "PONG");
    EXPECT_EQ(c->connect_count(), 2u);
}

TEST_F(PasswordTest, WrongPasswordFailsFast) {
    auto o = test::options_for(*server);
    o.password = "wrong";
    expect_refused(o, "WRONGPASS");
}

TEST_F(PasswordTest, MissingPasswordFailsFast) {
    auto o = test::options_for(*server);
    o.password.clear();
    expect_refused(o, "NOAUTH");
}

TEST_F(AclTest, AuthenticatesAsAclUser) {
    // The password holds a '%': percent-encoded in the URL.
    auto url = "redis://alice:wonder%25land@127.0.0.1:" + std::to_string(server->port()) + "/0";
    auto c = open(test::fast(parse_url(url).value()));
    auto who = run(c->exec(command{"ACL", "WHOAMI"}));
    ASSERT_TRUE(who.has_value());
    EXPECT_EQ(who->str, "alice");
}

TEST_F(AclTest, WrongAclPasswordFailsFast) {
    auto o = test::options_for(*server);
    o.user = "alice";
    o.password = "nope";
    expect_refused(o, "WRONGPASS");
}

namespace {

connection_options tls_client(const redis_server& s) {
    connection_options o = test::fast({});
    o.port = s.tls_port();
    o.tls.enabled = true;
    o.tls.server_name = "127.0.0.1";
    o.tls.ca_file = s.ca_file();
    return o;
}

}  // namespace

TEST_F(TlsTest, ConnectsWithTrustedCa) {
    auto url = "rediss://127.0.0.1:" + std::to_string(server->tls_port()) + "/1?ca=" + server->ca_file();
    auto c = open(test::fast(parse_url(url).value()));
    ASSERT_TRUE(run(c->exec(command{"SET", "k", "over tls"})).has_value());
    EXPECT_EQ(run(c->exec(command{"GET", "k"}))->str, "over tls");
    // Many requests in one write over TLS.
    std::vector<command> many;
    for (int i = 0; i < 500; ++i) many.emplace_back("INCR", "n");
    auto r = run(c->exec_many(std::move(many)));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->back().integer, 500);
}

TEST_F(TlsTest, ReconnectsOverTls) {
    auto c = open(tls_client(*server));
    ASSERT_TRUE(run(c->wait_connected(5s)));
    server->stop();
    server->start();
    EXPECT_EQ(run(c->exec(command{"PING"}, 5s))->str, "PONG");
    EXPECT_EQ(c->connect_count(), 2u);
}

TEST_F(TlsTest, VerificationFailsWithoutTheCa) {
    auto o = tls_client(*server);
    o.tls.ca_file.clear();  // system CAs do not know the test CA
    expect_refused(o, "certificate verify failed");
}

TEST_F(TlsTest, VerificationFailsForAnotherHostName) {
    auto o = tls_client(*server);
    o.tls.server_name = "other.example";
    expect_refused(o, "certificate verify failed");
}

TEST_F(TlsTest, NoVerificationWhenDisabled) {
    auto o = tls_client(*server);
    o.tls.ca_file.clear();
    o.tls.verify_peer = false;
    auto c = open(o);
    EXPECT_EQ(run(c->exec(command{"PING"}))->str, "PONG");
}

TEST_F(TlsTest, TlsToPlainPortTimesOut) {
    // A plain port never answers a ClientHello: the connect timeout ends each attempt.
    auto o = tls_client(*server);
    o.port = server->port();
    o.connect_timeout = 100ms;
    auto c = open(o);
    auto r = run(c->exec(command{"PING"}, 400ms));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::not_connected);
    EXPECT_NE(c->last_error().find("TLS handshake"), std::string::npos) << c->last_error();
}

TEST_F(TlsTest, PlainToTlsPortIsNotConnected) {
    connection_options o = test::fast({});
    o.port = server->tls_port();
    auto c = open(o);
    auto r = run(c->exec(command{"PING"}, 300ms));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::not_connected);
}

TEST_F(TlsTest, UnreadableCaFileFailsFast) {
    auto o = tls_client(*server);
    o.tls.ca_file = server->dir() + "/missing.crt";
    expect_refused(o, "CA file");
}
