// src/redis/connection_redistest.cpp
// The connection against a real redis-server: pipelining, reconnects, deadlines,
// stop(), db selection, blocking commands and cancellation.
#include "redis/connection.hpp"
#include "redis/test_helpers.hpp"

#include <spool/error.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include <optional>

using namespace spool;
using namespace spool::redis;
using namespace std::chrono_literals;
using spool::redis::test::drive_until;

namespace {

class ConnectionTest : public spool::testing::RedisTest, protected test::io_owner {
protected:
    void TearDown() override { close_all(); }
    std::shared_ptr<connection> open_default() {
        auto c = open(test::options_for(redis()));
        EXPECT_TRUE(run(c->wait_connected(5s)));
        return c;
    }
};

// INCRBY a key of its own and a shared counter, then read its key back.
asio::awaitable<bool> incr_then_get(std::shared_ptr<connection> c, int i) {
    auto key = "n:" + std::to_string(i);
    auto incr = co_await c->exec(command{"INCRBY", key, i});
    if (!incr || incr->integer != i) co_return false;
    auto shared = co_await c->exec(command{"INCR", "shared"});
    if (!shared || !shared->is_integer()) co_return false;
    auto get = co_await c->exec(command{"GET", key});
    co_return get && get->as_integer() == i;
}

asio::awaitable<result<reply>> exec_value(std::shared_ptr<connection> c, command cmd,
                                          std::chrono::milliseconds t) {
    co_return co_await c->exec(std::move(cmd), t);
}

}  // namespace

TEST_F(ConnectionTest, ThousandConcurrentCoroutinesArePipelined) {
    auto c = open_default();
    constexpr int n = 1000;
    int finished = 0, correct = 0;
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(ctx, incr_then_get(c, i), [&](std::exception_ptr e, bool ok) {
            ++finished;
            if (!e && ok) ++correct;
        });
    }
    ASSERT_TRUE(drive_until(
        ctx, [&] { return finished == n; }, 20s));
    EXPECT_EQ(correct, n);
    EXPECT_EQ(redis().cmd_int({"GET", "shared"}), n);
    auto st = c->stats();
    EXPECT_EQ(st.commands, 3u * n);
    EXPECT_EQ(st.replies, 3u * n);
    // Requests made while a write is in flight share the next write.
    EXPECT_LT(st.writes, 3u * n / 10) << "writes: " << st.writes;
}

TEST_F(ConnectionTest, ExecManyIsOneWriteWithRepliesInOrder) {
    auto c = open_default();
    auto before = c->stats().writes;
    std::vector<command> cmds;
    cmds.emplace_back("MULTI");
    cmds.emplace_back("SET", "a", "1");
    cmds.emplace_back("INCR", "a");
    cmds.emplace_back("EXEC");
    cmds.emplace_back("GET", "missing");
    auto r = run(c->exec_many(std::move(cmds)));
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->size(), 5u);
    EXPECT_EQ((*r)[0].str, "OK");
    EXPECT_EQ((*r)[1].str, "QUEUED");
    ASSERT_TRUE((*r)[3].is_array());
    EXPECT_EQ((*r)[3].elements.at(1).integer, 2);
    EXPECT_TRUE((*r)[4].is_nil());
    EXPECT_EQ(c->stats().writes, before + 1);
    auto empty = run(c->exec_many({}));
    ASSERT_TRUE(empty.has_value());
    EXPECT_TRUE(empty->empty());
}

TEST_F(ConnectionTest, ErrorReplyIsAValue) {
    auto c = open_default();
    redis().cmd({"SET", "s", "text"});
    auto r = run(c->exec(command{"INCR", "s"}));
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->is_error());
    EXPECT_NE(r->str.find("not an integer"), std::string::npos);
    auto bad = run(c->exec(command{}));
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error(), errc::invalid_argument);
    // The connection is still fine.
    EXPECT_EQ(run(c->exec(command{"PING"}))->str, "PONG");
}

TEST_F(ConnectionTest, LargeValuesRoundTrip) {
    auto c = open_default();
    std::string big(3 * 1024 * 1024, 'x');
    for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
    ASSERT_TRUE(run(c->exec(command{"SET", "big", big})).has_value());
    auto r = run(c->exec(command{"GET", "big"}));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->str, big);
    std::vector<command> many;
    for (int i = 0; i < 3000; ++i) many.emplace_back("LPUSH", "list", std::to_string(i));
    many.emplace_back("LRANGE", "list", "0", "-1");
    auto all = run(c->exec_many(std::move(many)));
    ASSERT_TRUE(all.has_value());
    ASSERT_EQ(all->back().elements.size(), 3000u);
    EXPECT_EQ(all->back().elements.front().str, "2999");
}

TEST_F(ConnectionTest, PasswordForServerWithoutOneIsIgnored) {
    auto o = test::options_for(redis());
    o.password = "unneeded";
    auto c = open(o);
    EXPECT_EQ(run(c->exec(command{"PING"}))->str, "PONG");
}

TEST_F(ConnectionTest, ReconnectsAfterServerRestart) {
    auto o = test::options_for(redis());
    int notified = 0;
    auto c = connection::create(ctx.get_executor(), o);
    c->on_connect([&] { ++notified; });
    c->start();
    conns.push_back(c);
    ASSERT_TRUE(run(c->wait_connected(5s)));
    ASSERT_TRUE(run(c->exec(command{"SET", "k", "v"})).has_value());
    EXPECT_EQ(c->connect_count(), 1u);

    redis().stop();
    ASSERT_TRUE(drive_until(ctx, [&] { return !c->is_connected(); }));
    // While Redis is down a request fails once its deadline passes, clearly.
    auto down = run(c->exec(command{"GET", "k"}, 200ms));
    ASSERT_FALSE(down.has_value());
    EXPECT_EQ(down.error(), errc::not_connected);
    EXPECT_FALSE(c->last_error().empty());
    EXPECT_FALSE(run(c->wait_connected(50ms)));

    // A request made during the outage with a longer deadline waits for the reconnect.
    std::optional<result<reply>> waiting;
    asio::co_spawn(ctx, exec_value(c, command{"SET", "after", "1"}, 10s),
                   [&](std::exception_ptr, result<reply> r) { waiting = std::move(r); });
    EXPECT_FALSE(drive_until(
        ctx, [&] { return waiting.has_value(); }, 100ms));

    redis().start();
    ASSERT_TRUE(run(c->wait_connected(5s)));
    ASSERT_TRUE(drive_until(ctx, [&] { return waiting.has_value(); }));
    ASSERT_TRUE(waiting->has_value());
    EXPECT_EQ((*waiting)->str, "OK");
    EXPECT_EQ(redis().cmd_str({"GET", "after"}), "1");
    auto r = run(c->exec(command{"PING"}));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->str, "PONG");
    EXPECT_EQ(c->connect_count(), 2u);
    ASSERT_TRUE(drive_until(ctx, [&] { return notified == 2; }));
}

TEST_F(ConnectionTest, FailFastWhenDownAnswersAtOnceAndRecovers) {
    auto o = test::options_for(redis());
    o.fail_fast_when_down = true;
    auto c = connection::create(ctx.get_executor(), o);
    c->start();
    conns.push_back(c);
    ASSERT_TRUE(run(c->wait_connected(5s)));

    redis().stop();
    // Once a reconnect attempt has failed, a request with a long deadline fails at once.
    ASSERT_TRUE(drive_until(ctx, [&] { return !c->is_connected() && !c->last_error().empty(); }));
    ASSERT_TRUE(drive_until(ctx, [&] {
        auto t0 = std::chrono::steady_clock::now();
        auto r = run(c->exec(command{"GET", "k"}, 10s));
        return !r.has_value() && r.error() == errc::not_connected &&
               std::chrono::steady_clock::now() - t0 < 1s;
    }));

    redis().start();
    ASSERT_TRUE(run(c->wait_connected(5s)));
    auto r = run(c->exec(command{"PING"}));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->str, "PONG");
}

TEST_F(ConnectionTest, InFlightRequestFailsWithConnectionLost) {
    auto c = open_default();
    std::optional<result<reply>> blpop;
    asio::co_spawn(ctx, exec_value(c, command{"BLPOP", "q", "20"}, 30s),
                   [&](std::exception_ptr, result<reply> r) { blpop = std::move(r); });
    ASSERT_TRUE(drive_until(ctx, [&] { return redis().info("blocked_clients") == "1"; }));
    redis().kill();
    ASSERT_TRUE(drive_until(ctx, [&] { return blpop.has_value(); }));
    ASSERT_FALSE(blpop->has_value());
    EXPECT_EQ(blpop->error(), errc::connection_lost);
    redis().start();
    ASSERT_TRUE(run(c->wait_connected(5s)));
    EXPECT_TRUE(run(c->exec(command{"PING"})).has_value());
}

TEST_F(ConnectionTest, WrittenRequestPastDeadlineTimesOutAndLinkRecovers) {
    auto c = open_default();
    // Redis holds every client's commands for a second.
    ASSERT_EQ(run(c->exec(command{"CLIENT", "PAUSE", "1000"}))->str, "OK");
    auto start = std::chrono::steady_clock::now();
    auto r = run(c->exec(command{"GET", "k"}, 200ms));
    auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::timeout);
    EXPECT_GE(waited, 190ms);
    EXPECT_LT(waited, 900ms);
    // The link was reset (a late reply could not be matched any more) and comes back.
    auto after = run(c->exec(command{"SET", "k", "v"}, 5s));
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->str, "OK");
    EXPECT_GE(c->connect_count(), 2u);
    EXPECT_EQ(run(c->exec(command{"GET", "k"}))->str, "v");
}

TEST_F(ConnectionTest, HealthCheckDropsASilentLink) {
    auto o = test::options_for(redis());
    o.health_check = 100ms;
    auto c = open(o);
    ASSERT_TRUE(run(c->wait_connected(5s)));
    {
        test::frozen_server frozen{redis().pid()};
        // No request is pending: only the health check can notice.
        ASSERT_TRUE(drive_until(
            ctx, [&] { return !c->is_connected(); }, 3s));
    }
    auto r = run(c->exec(command{"PING"}, 5s));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->str, "PONG");
    EXPECT_GE(c->connect_count(), 2u);
}

TEST_F(ConnectionTest, HealthCheckKeepsAnIdleLink) {
    auto o = test::options_for(redis());
    o.health_check = 20ms;
    auto c = open(o);
    ASSERT_TRUE(run(c->wait_connected(5s)));
    // Several probes go out and are answered; the link stays.
    ASSERT_TRUE(drive_until(
        ctx, [&] { return c->stats().replies >= 3; }, 3s));
    EXPECT_TRUE(c->is_connected());
    EXPECT_EQ(c->connect_count(), 1u);
}

TEST_F(ConnectionTest, StopFailsPendingRequestsWithShuttingDown) {
    auto c = open_default();
    std::optional<result<reply>> in_flight, queued;
    asio::co_spawn(ctx, exec_value(c, command{"BLPOP", "q", "20"}, 30s),
                   [&](std::exception_ptr, result<reply> r) { in_flight = std::move(r); });
    asio::co_spawn(ctx, exec_value(c, command{"GET", "x"}, 30s),
                   [&](std::exception_ptr, result<reply> r) { queued = std::move(r); });
    ASSERT_TRUE(drive_until(ctx, [&] { return redis().info("blocked_clients") == "1"; }));
    c->stop();
    ASSERT_TRUE(drive_until(
        ctx, [&] { return in_flight.has_value() && queued.has_value(); }, 1s));
    EXPECT_EQ(in_flight->error(), errc::shutting_down);
    EXPECT_EQ(queued->error(), errc::shutting_down);
    auto later = run(c->exec(command{"PING"}));
    ASSERT_FALSE(later.has_value());
    EXPECT_EQ(later.error(), errc::shutting_down);
    EXPECT_FALSE(c->is_connected());
    EXPECT_FALSE(run(c->wait_connected(1s)));
}

TEST_F(ConnectionTest, StopWhileRedisIsDown) {
    auto c = open_default();
    redis().stop();
    ASSERT_TRUE(drive_until(ctx, [&] { return !c->is_connected(); }));
    std::optional<result<reply>> waiting;
    asio::co_spawn(ctx, exec_value(c, command{"GET", "x"}, 30s),
                   [&](std::exception_ptr, result<reply> r) { waiting = std::move(r); });
    EXPECT_FALSE(drive_until(
        ctx, [&] { return waiting.has_value(); }, 50ms));
    c->stop();
    ASSERT_TRUE(drive_until(
        ctx, [&] { return waiting.has_value(); }, 1s));
    EXPECT_EQ(waiting->error(), errc::shutting_down);
}

TEST_F(ConnectionTest, NeverConnectedFailsWithNotConnected) {
    connection_options o = test::fast({});
    o.port = spool::testing::free_port();  // nothing listens there
    auto c = open(o);
    auto r = run(c->exec(command{"PING"}, 200ms));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::not_connected);
    EXPECT_FALSE(run(c->wait_connected(100ms)));
    EXPECT_NE(c->last_error().find("refused"), std::string::npos) << c->last_error();
    EXPECT_EQ(c->connect_count(), 0u);
}

TEST_F(ConnectionTest, ConnectTimeoutWhenServerNeverAnswers) {
    // A listener that accepts nothing: TCP connects, the handshake PING gets no answer.
    asio::ip::tcp::acceptor silent{ctx, asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
    connection_options o = test::fast({});
    o.port = silent.local_endpoint().port();
    o.connect_timeout = 150ms;
    auto c = open(o);
    auto r = run(c->exec(command{"PING"}, 600ms));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::not_connected);
    EXPECT_NE(c->last_error().find("timed out"), std::string::npos) << c->last_error();
}

TEST_F(ConnectionTest, RequestsBeforeStartFailAtOnce) {
    auto c = connection::create(ctx.get_executor(), test::options_for(redis()));
    auto r = run(c->exec(command{"PING"}), 1s);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::not_connected);
}

TEST_F(ConnectionTest, SelectIsolatesDatabasesAndSetsClientName) {
    auto o0 = test::options_for(redis());
    auto o3 = o0;
    o3.db = 3;
    o3.client_name = "spool-test";
    auto c0 = open(o0);
    auto c3 = open(o3);
    ASSERT_TRUE(run(c3->exec(command{"SET", "k", "three"})).has_value());
    EXPECT_TRUE(run(c0->exec(command{"GET", "k"}))->is_nil());
    EXPECT_EQ(run(c3->exec(command{"GET", "k"}))->str, "three");
    EXPECT_EQ(run(c3->exec(command{"CLIENT", "GETNAME"}))->str, "spool-test");
    // SELECT is re-sent after a reconnect.
    redis().stop();
    redis().start();
    ASSERT_TRUE(run(c3->exec(command{"SET", "again", "1"}, 5s)).has_value());
    EXPECT_EQ(run(c0->exec(command{"EXISTS", "again"}, 5s))->integer, 0);
    EXPECT_EQ(run(c3->exec(command{"EXISTS", "again"}))->integer, 1);
}

TEST_F(ConnectionTest, BlockingCommandOnDedicatedConnection) {
    auto o = test::options_for(redis());
    o.request_timeout = 300ms;  // shorter than the block: the call's own timeout decides
    auto blocking = open(o);
    auto c = open_default();
    ASSERT_TRUE(run(blocking->wait_connected(5s)));
    // Times out inside Redis (nil) well before the request's 3 s deadline.
    auto empty = run(blocking->exec(command{"BLPOP", "q", "0.5"}, 3s));
    ASSERT_TRUE(empty.has_value());
    EXPECT_TRUE(empty->is_nil());
    // Woken by a push from the shared connection.
    std::optional<result<reply>> popped;
    asio::co_spawn(ctx, exec_value(blocking, command{"BLPOP", "q", "5"}, 10s),
                   [&](std::exception_ptr, result<reply> r) { popped = std::move(r); });
    ASSERT_TRUE(drive_until(ctx, [&] { return redis().info("blocked_clients") == "1"; }));
    ASSERT_TRUE(run(c->exec(command{"RPUSH", "q", "job"})).has_value());
    ASSERT_TRUE(drive_until(ctx, [&] { return popped.has_value(); }));
    ASSERT_TRUE(popped->has_value());
    ASSERT_EQ((*popped)->elements.size(), 2u);
    EXPECT_EQ((*popped)->elements[1].str, "job");
}

namespace {

// exec(BLPOP) raced against a short timer: the timer wins and cancels the exec.
asio::awaitable<bool> cancelled_blpop(std::shared_ptr<connection> c) {
    asio::steady_timer t{co_await asio::this_coro::executor, 100ms};
    command blpop{"BLPOP", "q", "10"};
    auto pop = c->exec(std::move(blpop), 20s);
    auto tick = t.async_wait(use_tuple);
    auto winner = co_await (std::move(pop) || std::move(tick));
    co_return winner.index() == 1;
}

}  // namespace

TEST_F(ConnectionTest, CancelledRequestDiscardsItsReply) {
    auto c = open_default();
    auto other = open_default();
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(run(cancelled_blpop(c)));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    // The BLPOP is still blocked in Redis; unblock it. Its reply must not reach PING.
    ASSERT_TRUE(run(other->exec(command{"RPUSH", "q", "x"})).has_value());
    auto pong = run(c->exec(command{"PING"}));
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(pong->str, "PONG");
    EXPECT_EQ(c->connect_count(), 1u);
}

namespace {

asio::awaitable<int> incr_many(std::shared_ptr<connection> c, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i)
        if (auto r = co_await c->exec(command{"INCR", "counter"}); r && r->is_integer()) ++ok;
    co_return ok;
}

}  // namespace

TEST_F(ConnectionTest, PipelinedThroughput) {
    auto c = open_default();
    constexpr int workers = 200, each = 100;
    int finished = 0, ok = 0;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < workers; ++i)
        asio::co_spawn(ctx, incr_many(c, each), [&](std::exception_ptr, int n) {
            ++finished;
            ok += n;
        });
    ASSERT_TRUE(drive_until(
        ctx, [&] { return finished == workers; }, 20s));
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(ok, workers * each);
    EXPECT_EQ(redis().cmd_int({"GET", "counter"}), workers * each);
    std::printf("%d pipelined INCRs in %.3f s: %.0f/s, %llu writes\n", workers * each, secs,
                workers * each / secs, static_cast<unsigned long long>(c->stats().writes));
}
