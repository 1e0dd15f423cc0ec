// src/redis/reply_reader_test.cpp
#include "redis/reply_reader.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

using spool::redis::reply;
using spool::redis::reply_reader;

namespace {

// Feeds `bytes` and returns every complete reply.
std::vector<reply> parse(reply_reader& r, std::string_view bytes) {
    EXPECT_TRUE(r.feed(bytes).has_value());
    std::vector<reply> out;
    for (;;) {
        auto next = r.next();
        EXPECT_TRUE(next.has_value());
        if (!next || !*next) break;
        out.push_back(std::move(**next));
    }
    return out;
}

bool same(const reply& a, const reply& b) {
    if (a.type != b.type || a.integer != b.integer || a.str != b.str ||
        a.elements.size() != b.elements.size())
        return false;
    for (std::size_t i = 0; i < a.elements.size(); ++i)
        if (!same(a.elements[i], b.elements[i])) return false;
    return true;
}

reply array(std::vector<reply> elements) {
    reply r;
    r.type = reply::kind::array;
    r.elements = std::move(elements);
    return r;
}

// Several replies of every kind, with nesting, nils and an error inside an array.
const std::string stream =
    "+OK\r\n"
    "-ERR wrong type\r\n"
    ":-42\r\n"
    "$5\r\nhe\r\no\r\n"
    "$0\r\n\r\n"
    "$-1\r\n"
    "*-1\r\n"
    "*0\r\n"
    "*3\r\n*2\r\n:1\r\n$1\r\na\r\n$-1\r\n*2\r\n-NOSCRIPT x\r\n*1\r\n+deep\r\n";

std::vector<reply> expected_stream() {
    using k = reply::kind;
    return {
        reply::make_string("OK", k::status),
        reply::make_string("ERR wrong type", k::error),
        reply::make_integer(-42),
        reply::make_string("he\r\no"),
        reply::make_string(""),
        reply::make_nil(),
        reply::make_nil(),
        array({}),
        array({array({reply::make_integer(1), reply::make_string("a")}), reply::make_nil(),
               array({reply::make_string("NOSCRIPT x", k::error),
                      array({reply::make_string("deep", k::status)})})}),
    };
}

}  // namespace

TEST(ReplyReader, ParsesEveryKind) {
    reply_reader r;
    auto got = parse(r, stream);
    auto want = expected_stream();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(same(got[i], want[i])) << "reply " << i;
    EXPECT_TRUE(got[1].is_error());
    EXPECT_TRUE(got[0].is_string());
    EXPECT_TRUE(got[5].is_nil());
    EXPECT_TRUE(got[7].is_array());
}

TEST(ReplyReader, SplitAtEveryByteBoundary) {
    auto want = expected_stream();
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        reply_reader r;
        auto got = parse(r, std::string_view{stream}.substr(0, cut));
        auto rest = parse(r, std::string_view{stream}.substr(cut));
        got.insert(got.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
        ASSERT_EQ(got.size(), want.size()) << "cut at " << cut;
        for (std::size_t i = 0; i < want.size(); ++i)
            EXPECT_TRUE(same(got[i], want[i])) << "cut " << cut << " reply " << i;
    }
}

TEST(ReplyReader, OneByteAtATime) {
    reply_reader r;
    std::vector<reply> got;
    for (char c : stream) {
        auto part = parse(r, std::string_view{&c, 1});
        for (auto& p : part) got.push_back(std::move(p));
    }
    auto want = expected_stream();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(same(got[i], want[i]));
}

TEST(ReplyReader, NeedsMoreBytes) {
    reply_reader r;
    ASSERT_TRUE(r.feed("$10\r\n01234").has_value());
    auto next = r.next();
    ASSERT_TRUE(next.has_value());
    EXPECT_FALSE(next->has_value());
    ASSERT_TRUE(r.feed("56789\r\n").has_value());
    next = r.next();
    ASSERT_TRUE(next.has_value() && next->has_value());
    EXPECT_EQ((*next)->str, "0123456789");
}

TEST(ReplyReader, ProtocolErrorIsBadReplyAndResetRecovers) {
    reply_reader r;
    ASSERT_TRUE(r.feed("?what\r\n").has_value());
    auto next = r.next();
    ASSERT_FALSE(next.has_value());
    EXPECT_EQ(next.error(), spool::errc::bad_reply);
    r.reset();
    auto got = parse(r, ":7\r\n");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].integer, 7);
}

TEST(ReplyReader, ResetDropsPartialReply) {
    reply_reader r;
    auto none = parse(r, "*2\r\n:1\r\n");
    EXPECT_TRUE(none.empty());
    r.reset();
    auto got = parse(r, "+PONG\r\n");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].str, "PONG");
}

TEST(ReplyReader, LargeBulkString) {
    reply_reader r;
    std::string big(300000, 'z');
    std::string bytes = "$" + std::to_string(big.size()) + "\r\n" + big + "\r\n";
    std::vector<reply> got;
    for (std::size_t off = 0; off < bytes.size(); off += 65536) {
        auto part = parse(r, std::string_view{bytes}.substr(off, 65536));
        for (auto& p : part) got.push_back(std::move(p));
    }
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].str, big);
}

TEST(Reply, AsInteger) {
    EXPECT_EQ(reply::make_integer(5).as_integer(), 5);
    EXPECT_EQ(reply::make_string("-12").as_integer(), -12);
    EXPECT_EQ(reply::make_string("12a").as_integer(), std::nullopt);
    EXPECT_EQ(reply::make_string("").as_integer(), std::nullopt);
    EXPECT_EQ(reply::make_nil().as_integer(), std::nullopt);
    EXPECT_EQ(reply::make_string("1", reply::kind::error).as_integer(), std::nullopt);
}
