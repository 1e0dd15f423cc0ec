// src/supervisor/embedded_redis_redistest.cpp
// The embedded redis-server for real: needs `redis-server` on PATH (not the
// shared test fixture; each test gets its own temporary data dir).
#include "supervisor/embedded_redis.hpp"

#include "supervisor/test_support.hpp"
#include "testing/run_coro.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

using namespace spool;
using namespace spool::supervisor;
using spool::testing::run_coro;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class EmbeddedRedis : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/spool-embedded-XXXXXX";
        ASSERT_TRUE(::mkdtemp(tmpl));
        root_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    embedded_redis_options options() const {
        embedded_redis_options o;
        o.data_dir = root_ / "data";
        o.restart_backoff_initial = 50ms;
        return o;
    }

    // One command over a fresh hiredis connection to the URL start() returned.
    static std::string command(const std::string& url, const std::vector<std::string>& args) {
        redisContext* c = nullptr;
        if (url.starts_with("unix://")) {
            c = redisConnectUnix(url.substr(7).c_str());
        } else {
            auto hostport = url.substr(8, url.rfind('/') - 8);  // redis://127.0.0.1:N/0
            auto colon = hostport.rfind(':');
            c = redisConnect(hostport.substr(0, colon).c_str(), std::stoi(hostport.substr(colon + 1)));
        }
        if (!c || c->err) {
            if (c) redisFree(c);
            return "<no connection>";
        }
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        auto* r = static_cast<redisReply*>(
            redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
        std::string out = !r                           ? "<no reply>"
                          : r->type == REDIS_REPLY_NIL ? "<nil>"
                                                       : std::string{r->str, r->len};
        if (r) freeReplyObject(r);
        redisFree(c);
        return out;
    }

    std::string start(embedded_redis& r) {
        auto url = run_coro(ctx_, r.start(), 15s);
        EXPECT_TRUE(url.has_value()) << r.last_error();
        return url ? *url : std::string{};
    }

    asio::io_context ctx_;
    fs::path root_;
};

}  // namespace

TEST_F(EmbeddedRedis, StartsOnAUnixSocketAnswersPingAndStops) {
    embedded_redis r{ctx_.get_executor(), options()};
    auto url = start(r);
    auto sock = fs::canonical(root_ / "data").string() + "/redis.sock";
    EXPECT_EQ(url, "unix://" + sock);
    EXPECT_EQ(command(url, {"PING"}), "PONG");
    int pid = r.pid();
    EXPECT_TRUE(test::alive(pid));
    run_coro(ctx_, r.stop(), 15s);
    EXPECT_FALSE(test::alive(pid));
    EXPECT_FALSE(r.running());
    EXPECT_TRUE(fs::exists(root_ / "data" / "appendonlydir"));
    EXPECT_TRUE(fs::exists(root_ / "data" / "appendonlydir" / "appendonly.aof.manifest"));
    EXPECT_TRUE(fs::exists(root_ / "data" / "redis.log"));
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // reaped, no zombie
}

TEST_F(EmbeddedRedis, AofIsOnWithEverysecAndNoSnapshots) {
    embedded_redis r{ctx_.get_executor(), options()};
    auto url = start(r);
    redisContext* c = redisConnectUnix(url.substr(7).c_str());
    ASSERT_TRUE(c && !c->err);
    auto get = [&](const char* name) {
        auto* rep = static_cast<redisReply*>(redisCommand(c, "CONFIG GET %s", name));
        std::string v =
            rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 ? rep->element[1]->str : "?";
        if (rep) freeReplyObject(rep);
        return v;
    };
    EXPECT_EQ(get("appendonly"), "yes");
    EXPECT_EQ(get("appendfsync"), "everysec");
    EXPECT_EQ(get("save"), "");
    EXPECT_EQ(get("port"), "0");
    EXPECT_EQ(get("unixsocketperm"), "700");
    redisFree(c);
    run_coro(ctx_, r.stop(), 15s);
}

TEST_F(EmbeddedRedis, RestartOnTheSameDataDirKeepsData) {
    {
        embedded_redis r{ctx_.get_executor(), options()};
        auto url = start(r);
        ASSERT_EQ(command(url, {"SET", "spool:test:key", "kept"}), "OK");
        run_coro(ctx_, r.stop(), 15s);  // SIGTERM: Redis flushes the AOF
    }
    embedded_redis again{ctx_.get_executor(), options()};
    auto url = start(again);
    EXPECT_EQ(command(url, {"GET", "spool:test:key"}), "kept");
    run_coro(ctx_, again.stop(), 15s);
}

TEST_F(EmbeddedRedis, MissingRedisServerSaysHowToInstallIt) {
    auto o = options();
    o.program = "spool-no-such-redis-server";
    embedded_redis r{ctx_.get_executor(), o};
    auto url = run_coro(ctx_, r.start());
    ASSERT_FALSE(url.has_value());
    EXPECT_EQ(url.error(), boost::system::errc::no_such_file_or_directory);
    EXPECT_NE(r.last_error().find("sudo apt-get install redis-server"), std::string::npos) << r.last_error();
    EXPECT_NE(r.last_error().find("--redis"), std::string::npos) << r.last_error();
}

TEST_F(EmbeddedRedis, SecondInstanceOnTheSameDataDirIsRefused) {
    embedded_redis first{ctx_.get_executor(), options()};
    auto url = start(first);
    embedded_redis second{ctx_.get_executor(), options()};
    auto again = run_coro(ctx_, second.start());
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error(), boost::system::errc::device_or_resource_busy);
    EXPECT_NE(second.last_error().find("in use"), std::string::npos) << second.last_error();
    EXPECT_EQ(command(url, {"PING"}), "PONG");  // the first one is unharmed
    run_coro(ctx_, first.stop(), 15s);
    // Once released, the data dir can be used again.
    start(second);
    run_coro(ctx_, second.stop(), 15s);
}

TEST_F(EmbeddedRedis, StaleSocketFileIsReplaced) {
    fs::create_directories(root_ / "data");
    auto sock = (root_ / "data" / "redis.sock").string();
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);  // the file stays, nobody listens: a crashed run's leftover
    ASSERT_TRUE(fs::exists(sock));
    embedded_redis r{ctx_.get_executor(), options()};
    auto url = start(r);
    EXPECT_EQ(command(url, {"PING"}), "PONG");
    run_coro(ctx_, r.stop(), 15s);
}

TEST_F(EmbeddedRedis, LeftoverRedisServerOfAPreviousRunIsStopped) {
    {
        embedded_redis r{ctx_.get_executor(), options()};
        start(r);
        run_coro(ctx_, r.stop(), 15s);
    }
    // A redis-server on that data dir that nobody supervises any more.
    auto dir = fs::canonical(root_ / "data");
    pid_t leftover = ::fork();
    ASSERT_GE(leftover, 0);
    if (leftover == 0) {
        auto conf = (dir / "redis.conf").string();
        ::execlp("redis-server", "redis-server", conf.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    auto url = "unix://" + (dir / "redis.sock").string();
    ASSERT_TRUE(test::run_until(
        ctx_, [&] { return command(url, {"PING"}) == "PONG"; }, 10s));
    ASSERT_TRUE(test::run_until(ctx_, [&] { return fs::exists(dir / "redis.pid"); }));

    embedded_redis r{ctx_.get_executor(), options()};
    EXPECT_EQ(start(r), url);
    EXPECT_NE(r.pid(), leftover);
    EXPECT_FALSE(test::alive(leftover));
    EXPECT_EQ(command(url, {"PING"}), "PONG");
    int st = 0;
    EXPECT_EQ(::waitpid(leftover, &st, 0), leftover);  // it was our child in this test: reap it
    run_coro(ctx_, r.stop(), 15s);
}

TEST_F(EmbeddedRedis, TcpModeListensOnAFreeLoopbackPort) {
    auto o = options();
    o.use_tcp = true;
    embedded_redis r{ctx_.get_executor(), o};
    auto url = start(r);
    EXPECT_EQ(url, "redis://127.0.0.1:" + std::to_string(r.port()) + "/0");
    EXPECT_GT(r.port(), 0);
    EXPECT_EQ(command(url, {"PING"}), "PONG");
    run_coro(ctx_, r.stop(), 15s);
}

TEST_F(EmbeddedRedis, CrashedRedisIsRestartedOnTheSameSocket) {
    embedded_redis r{ctx_.get_executor(), options()};
    auto url = start(r);
    int first = r.pid();
    ASSERT_EQ(::kill(first, SIGKILL), 0);
    ASSERT_TRUE(test::run_until(
        ctx_, [&] { return r.restarts() == 1 && r.running(); }, 10s));
    EXPECT_NE(r.pid(), first);
    EXPECT_EQ(r.url(), url);
    EXPECT_EQ(command(url, {"PING"}), "PONG");
    run_coro(ctx_, r.stop(), 15s);
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
}

TEST_F(EmbeddedRedis, TooLongSocketPathIsAClearError) {
    auto o = options();
    o.data_dir = root_ / std::string(120, 'd');
    embedded_redis r{ctx_.get_executor(), o};
    auto url = run_coro(ctx_, r.start());
    ASSERT_FALSE(url.has_value());
    EXPECT_NE(r.last_error().find("too long"), std::string::npos) << r.last_error();
}
