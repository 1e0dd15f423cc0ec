// src/redis/subscriber_redistest.cpp
#include "redis/subscriber.hpp"
#include "redis/test_helpers.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

#include <optional>

using namespace spool;
using namespace spool::redis;
using namespace std::chrono_literals;
using spool::redis::test::drive_until;

namespace {

class SubscriberTest : public spool::testing::RedisTest, protected test::io_owner {
protected:
    void TearDown() override { close_all(); }

    // Waits (running the loop) until Redis counts `n` subscribers on `channel`.
    bool subscribed(const std::string& channel, int n = 1) {
        return drive_until(ctx, [&] {
            auto v = redis().cmd({"PUBSUB", "NUMSUB", channel});
            return v.size() == 2 && v[1] == std::to_string(n);
        });
    }
    void publish(const std::string& channel, const std::string& text) {
        redis().cmd({"PUBLISH", channel, text});
    }
};

asio::awaitable<result<message>> receive_from(std::shared_ptr<subscriber> s) {
    co_return co_await s->receive();
}

}  // namespace

TEST_F(SubscriberTest, ReceivesMessages) {
    auto sub = open_subscriber(test::options_for(redis()));
    sub->subscribe({"news"});
    ASSERT_TRUE(subscribed("news"));
    publish("news", "hello");
    publish("news", "world");
    auto m = run(sub->receive());
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->channel, "news");
    EXPECT_EQ(m->payload, "hello");
    EXPECT_EQ(run(sub->receive())->payload, "world");
    EXPECT_TRUE(sub->is_connected());
}

TEST_F(SubscriberTest, SubscribesWhileConnectedAndUnsubscribes) {
    auto sub = open_subscriber(test::options_for(redis()));
    sub->subscribe({"a"});
    ASSERT_TRUE(subscribed("a"));
    sub->subscribe({"b", "a"});
    ASSERT_TRUE(subscribed("b"));
    sub->unsubscribe({"a"});
    ASSERT_TRUE(subscribed("a", 0));
    publish("a", "lost");
    publish("b", "kept");
    auto m = run(sub->receive());
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->channel, "b");
    EXPECT_EQ(m->payload, "kept");
}

TEST_F(SubscriberTest, ResubscribesAfterServerRestart) {
    auto sub = open_subscriber(test::options_for(redis()));
    sub->subscribe({"events"});
    ASSERT_TRUE(subscribed("events"));
    publish("events", "before");
    EXPECT_EQ(run(sub->receive())->payload, "before");

    redis().stop();
    ASSERT_TRUE(drive_until(ctx, [&] { return !sub->is_connected(); }));
    redis().start();
    ASSERT_TRUE(subscribed("events"));
    publish("events", "after");
    auto m = run(sub->receive());
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->payload, "after");
    EXPECT_EQ(sub->connect_count(), 2u);
}

TEST_F(SubscriberTest, HealthCheckReconnectsASilentLink) {
    auto o = test::options_for(redis());
    o.health_check = 100ms;
    auto sub = open_subscriber(o);
    sub->subscribe({"events"});
    ASSERT_TRUE(subscribed("events"));
    {
        test::frozen_server frozen{redis().pid()};
        ASSERT_TRUE(drive_until(
            ctx, [&] { return !sub->is_connected(); }, 3s));
    }
    ASSERT_TRUE(drive_until(ctx, [&] { return sub->connect_count() >= 2 && sub->is_connected(); }));
    ASSERT_TRUE(subscribed("events"));
    publish("events", "still here");
    EXPECT_EQ(run(sub->receive())->payload, "still here");
}

TEST_F(SubscriberTest, QueueIsBoundedDroppingOldest) {
    auto sub = open_subscriber(test::options_for(redis()), 2);
    sub->subscribe({"burst"});
    ASSERT_TRUE(subscribed("burst"));
    for (int i = 0; i < 5; ++i) publish("burst", std::to_string(i));
    ASSERT_TRUE(drive_until(ctx, [&] { return sub->dropped() == 3; }));
    EXPECT_EQ(run(sub->receive())->payload, "3");
    EXPECT_EQ(run(sub->receive())->payload, "4");
}

TEST_F(SubscriberTest, StopCompletesWaitingReceive) {
    auto sub = open_subscriber(test::options_for(redis()));
    sub->subscribe({"quiet"});
    std::optional<result<message>> got;
    asio::co_spawn(ctx, receive_from(sub),
                   [&](std::exception_ptr, result<message> m) { got = std::move(m); });
    ASSERT_TRUE(subscribed("quiet"));
    EXPECT_FALSE(got.has_value());
    sub->stop();
    ASSERT_TRUE(drive_until(
        ctx, [&] { return got.has_value(); }, 1s));
    ASSERT_FALSE(got->has_value());
    EXPECT_EQ(got->error(), errc::shutting_down);
    EXPECT_EQ(run(sub->receive()).error(), errc::shutting_down);
}

namespace {

// receive() raced against a short timer: the timer wins and cancels the receive.
asio::awaitable<bool> receive_cancelled(std::shared_ptr<subscriber> s) {
    asio::steady_timer t{co_await asio::this_coro::executor, 50ms};
    auto rx = s->receive();
    auto tick = t.async_wait(use_tuple);
    auto winner = co_await (std::move(rx) || std::move(tick));
    co_return winner.index() == 1;
}

}  // namespace

TEST_F(SubscriberTest, CancelledReceiveLosesNoMessage) {
    auto sub = open_subscriber(test::options_for(redis()));
    sub->subscribe({"c"});
    ASSERT_TRUE(subscribed("c"));
    EXPECT_TRUE(run(receive_cancelled(sub)));
    publish("c", "next");
    EXPECT_EQ(run(sub->receive())->payload, "next");
}
