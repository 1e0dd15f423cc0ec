// src/redis/pipeline_test.cpp
#include "redis/pipeline.hpp"

#include <spool/error.hpp>

#include <boost/asio/error.hpp>

#include <gtest/gtest.h>

#include <optional>

using boost::system::error_code;
using spool::errc;
using spool::redis::command;
using spool::redis::pipeline;
using spool::redis::reply;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;
const clock_type::time_point t0{std::chrono::seconds{1000}};

// What one request received.
struct outcome {
    int calls = 0;
    error_code ec;
    std::vector<reply> replies;
};

pipeline::completion record(outcome& o) {
    return [&o](error_code ec, std::vector<reply> r) {
        ++o.calls;
        o.ec = ec;
        o.replies = std::move(r);
    };
}

std::vector<command> one(command c) {
    std::vector<command> v;
    v.push_back(std::move(c));
    return v;
}

std::string encoded(std::initializer_list<command> cmds) {
    std::string out;
    for (const auto& c : cmds) c.encode_to(out);
    return out;
}

}  // namespace

TEST(Pipeline, MatchesRepliesInOrder) {
    pipeline p;
    outcome a, b, c;
    p.push(one(command{"GET", "a"}), t0 + 1s, record(a));
    std::vector<command> two;
    two.emplace_back("INCR", "n");
    two.emplace_back("GET", "n");
    p.push(std::move(two), t0 + 1s, record(b));
    p.push(one(command{"PING"}), t0 + 1s, record(c));

    EXPECT_EQ(p.take_writes(),
              encoded({command{"GET", "a"}, command{"INCR", "n"}, command{"GET", "n"}, command{"PING"}}));
    EXPECT_EQ(p.in_flight(), 3u);
    EXPECT_FALSE(p.has_unwritten());

    EXPECT_TRUE(p.on_reply(reply::make_string("va")));
    EXPECT_EQ(a.calls, 1);
    EXPECT_TRUE(p.on_reply(reply::make_integer(1)));
    EXPECT_EQ(b.calls, 0);  // waits for both of its replies
    EXPECT_TRUE(p.on_reply(reply::make_string("1")));
    EXPECT_TRUE(p.on_reply(reply::make_string("PONG", reply::kind::status)));

    EXPECT_EQ(a.replies.at(0).str, "va");
    ASSERT_EQ(b.replies.size(), 2u);
    EXPECT_EQ(b.replies[0].integer, 1);
    EXPECT_EQ(b.replies[1].str, "1");
    EXPECT_EQ(c.replies.at(0).str, "PONG");
    EXPECT_FALSE(a.ec || b.ec || c.ec);
    EXPECT_EQ(p.pending(), 0u);
}

TEST(Pipeline, CoalescesWhatWaitsDuringAWrite) {
    pipeline p;
    outcome a, b, c;
    p.push(one(command{"GET", "a"}), t0 + 1s, record(a));
    std::string first;
    EXPECT_EQ(p.take_writes(first), 1u);
    // While that write is in flight, two more requests queue up...
    p.push(one(command{"GET", "b"}), t0 + 1s, record(b));
    p.push(one(command{"GET", "c"}), t0 + 1s, record(c));
    EXPECT_TRUE(p.has_unwritten());
    // ...and leave together in the next write.
    EXPECT_EQ(p.take_writes(), encoded({command{"GET", "b"}, command{"GET", "c"}}));
    EXPECT_EQ(p.take_writes(), "");
    EXPECT_EQ(p.in_flight(), 3u);
}

TEST(Pipeline, ReplyWithoutRequestIsRejected) {
    pipeline p;
    EXPECT_FALSE(p.on_reply(reply::make_integer(1)));
    outcome a;
    p.push(one(command{"GET", "a"}), t0 + 1s, record(a));
    EXPECT_FALSE(p.on_reply(reply::make_integer(1)));  // not written yet
    EXPECT_EQ(a.calls, 0);
}

TEST(Pipeline, FailAllCompletesEverything) {
    pipeline p;
    outcome a, b;
    p.push(one(command{"GET", "a"}), t0 + 1s, record(a));
    p.take_writes();
    p.push(one(command{"GET", "b"}), t0 + 1s, record(b));
    p.fail_all(errc::shutting_down);
    EXPECT_EQ(a.calls, 1);
    EXPECT_EQ(b.calls, 1);
    EXPECT_EQ(a.ec, errc::shutting_down);
    EXPECT_EQ(b.ec, errc::shutting_down);
    EXPECT_EQ(p.pending(), 0u);
    EXPECT_EQ(p.in_flight(), 0u);
}

TEST(Pipeline, FailWrittenKeepsUnwritten) {
    pipeline p;
    outcome a, b;
    p.push(one(command{"GET", "a"}), t0 + 1s, record(a));
    p.take_writes();
    p.push(one(command{"GET", "b"}), t0 + 1s, record(b));
    p.fail_written(errc::connection_lost);
    EXPECT_EQ(a.ec, errc::connection_lost);
    EXPECT_EQ(b.calls, 0);
    EXPECT_EQ(p.pending(), 1u);
    // After a reconnect the survivor goes out and is matched normally.
    EXPECT_EQ(p.take_writes(), encoded({command{"GET", "b"}}));
    EXPECT_TRUE(p.on_reply(reply::make_string("vb")));
    EXPECT_EQ(b.calls, 1);
    EXPECT_FALSE(b.ec);
    EXPECT_EQ(b.replies.at(0).str, "vb");
}

TEST(Pipeline, ExpireUnwrittenRequests) {
    pipeline p;
    outcome early, late, down;
    p.push(one(command{"GET", "a"}), t0 + 1s, record(early));
    p.push(one(command{"GET", "b"}), t0 + 5s, record(late));
    p.push(one(command{"GET", "c"}), t0 + 2s, record(down));
    EXPECT_EQ(p.next_deadline(), t0 + 1s);

    EXPECT_FALSE(p.expire(t0 + 1s));
    EXPECT_EQ(early.ec, errc::timeout);
    EXPECT_EQ(late.calls + down.calls, 0);
    EXPECT_EQ(p.next_deadline(), t0 + 2s);

    EXPECT_FALSE(p.expire(t0 + 3s, errc::not_connected));
    EXPECT_EQ(down.ec, errc::not_connected);
    EXPECT_EQ(late.calls, 0);
    EXPECT_EQ(p.pending(), 1u);
    EXPECT_EQ(p.take_writes(), encoded({command{"GET", "b"}}));
}

TEST(Pipeline, ExpireWrittenRequestAsksForDrop) {
    pipeline p;
    outcome slow, fast, queued;
    p.push(one(command{"BLPOP", "q", "0"}), t0 + 1s, record(slow));
    p.push(one(command{"GET", "a"}), t0 + 10s, record(fast));
    p.take_writes();
    p.push(one(command{"GET", "b"}), t0 + 10s, record(queued));

    EXPECT_FALSE(p.expire(t0 + 500ms));
    EXPECT_TRUE(p.expire(t0 + 1s));
    EXPECT_EQ(slow.calls, 1);
    EXPECT_EQ(slow.ec, errc::timeout);
    // Timed out once only, even if expire runs again.
    EXPECT_FALSE(p.expire(t0 + 2s));
    EXPECT_EQ(slow.calls, 1);
    EXPECT_EQ(p.next_deadline(), t0 + 10s);

    // The caller drops the link: the other written request is lost, the queued one waits.
    p.fail_written(errc::connection_lost);
    EXPECT_EQ(slow.calls, 1);
    EXPECT_EQ(fast.ec, errc::connection_lost);
    EXPECT_EQ(queued.calls, 0);
    EXPECT_EQ(p.pending(), 1u);
}

TEST(Pipeline, TimedOutRequestStillAbsorbsItsReply) {
    pipeline p;
    outcome slow, next;
    p.push(one(command{"GET", "a"}), t0 + 1s, record(slow));
    p.push(one(command{"GET", "b"}), t0 + 10s, record(next));
    p.take_writes();
    EXPECT_TRUE(p.expire(t0 + 2s));
    // If the link survived anyway, the late reply goes nowhere and the next matches.
    EXPECT_TRUE(p.on_reply(reply::make_string("late")));
    EXPECT_EQ(slow.calls, 1);
    EXPECT_TRUE(p.on_reply(reply::make_string("vb")));
    EXPECT_EQ(next.replies.at(0).str, "vb");
}

TEST(Pipeline, CancelUnwrittenRemovesIt) {
    pipeline p;
    outcome a, b;
    auto seq = p.push(one(command{"GET", "a"}), t0 + 1s, record(a));
    p.push(one(command{"GET", "b"}), t0 + 1s, record(b));
    EXPECT_TRUE(p.cancel(seq));
    EXPECT_EQ(a.ec, boost::asio::error::operation_aborted);
    EXPECT_FALSE(p.cancel(seq));
    EXPECT_EQ(p.take_writes(), encoded({command{"GET", "b"}}));
}

TEST(Pipeline, CancelWrittenDiscardsItsReply) {
    pipeline p;
    outcome a, b;
    std::vector<command> two;
    two.emplace_back("GET", "a1");
    two.emplace_back("GET", "a2");
    auto seq = p.push(std::move(two), t0 + 1s, record(a));
    p.push(one(command{"GET", "b"}), t0 + 1s, record(b));
    p.take_writes();
    EXPECT_TRUE(p.on_reply(reply::make_string("a1")));
    EXPECT_TRUE(p.cancel(seq));
    EXPECT_EQ(a.calls, 1);
    EXPECT_EQ(a.ec, boost::asio::error::operation_aborted);
    EXPECT_TRUE(p.on_reply(reply::make_string("a2")));
    EXPECT_EQ(a.calls, 1);
    EXPECT_TRUE(p.on_reply(reply::make_string("vb")));
    EXPECT_EQ(b.replies.at(0).str, "vb");
    EXPECT_EQ(p.pending(), 0u);
}

TEST(Pipeline, CompletionMayPushAgain) {
    pipeline p;
    outcome second;
    int first_calls = 0;
    auto chain = [&](error_code, std::vector<reply>) {
        ++first_calls;
        p.push(one(command{"GET", "again"}), t0 + 1s, record(second));
    };
    p.push(one(command{"GET", "a"}), t0 + 1s, chain);
    p.take_writes();
    EXPECT_TRUE(p.on_reply(reply::make_nil()));
    EXPECT_EQ(first_calls, 1);
    EXPECT_EQ(p.take_writes(), encoded({command{"GET", "again"}}));
    EXPECT_TRUE(p.on_reply(reply::make_integer(3)));
    EXPECT_EQ(second.replies.at(0).integer, 3);
}

TEST(Pipeline, EmptyRequestCompletesAtOnce) {
    pipeline p;
    outcome a;
    p.push({}, t0 + 1s, record(a));
    EXPECT_EQ(a.calls, 1);
    EXPECT_FALSE(a.ec);
    EXPECT_TRUE(a.replies.empty());
    EXPECT_EQ(p.pending(), 0u);
    EXPECT_EQ(p.next_deadline(), clock_type::time_point::max());
}
