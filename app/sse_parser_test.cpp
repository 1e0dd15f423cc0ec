// app/sse_parser_test.cpp
#include "app/sse_parser.hpp"

#include <gtest/gtest.h>

using spool::cli::sse_event;
using spool::cli::sse_parser;

namespace {

std::vector<sse_event> feed_bytewise(sse_parser& p, std::string_view text) {
    std::vector<sse_event> all;
    for (char c : text) {
        auto got = p.feed(std::string_view{&c, 1});
        all.insert(all.end(), got.begin(), got.end());
    }
    return all;
}

}  // namespace

TEST(SseParser, ParsesIdEventAndData) {
    sse_parser p;
    auto ev = p.feed("id: 1-0\nevent: status\ndata: {\"status\":\"queued\"}\n\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].id, "1-0");
    EXPECT_EQ(ev[0].type, "status");
    EXPECT_EQ(ev[0].data, R"({"status":"queued"})");
    EXPECT_EQ(p.last_event_id(), "1-0");
}

TEST(SseParser, EventWithoutTypeIsMessage) {
    sse_parser p;
    auto ev = p.feed("data: x\n\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].type, "message");
    EXPECT_EQ(ev[0].id, "");
}

TEST(SseParser, JoinsDataLinesWithNewline) {
    sse_parser p;
    auto ev = p.feed("data: a\ndata: b\ndata\n\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, "a\nb\n");
}

TEST(SseParser, OnlyOneLeadingSpaceIsStripped) {
    sse_parser p;
    auto ev = p.feed("data:no-space\n\ndata:  two\n\n");
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].data, "no-space");
    EXPECT_EQ(ev[1].data, " two");
}

TEST(SseParser, WaitsForTheBlankLine) {
    sse_parser p;
    EXPECT_TRUE(p.feed("id: 7\nevent: progress\ndata: {\"progress\":5").empty());
    EXPECT_TRUE(p.feed("0}\n").empty());
    auto ev = p.feed("\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, R"({"progress":50})");
    EXPECT_EQ(ev[0].type, "progress");
}

TEST(SseParser, ChunkBoundariesAnywhereGiveTheSameEvents) {
    const std::string stream =
        "id: 1-0\r\nevent: status\r\ndata: {\"status\":\"queued\"}\r\n\r\n"
        ": keep-alive\r\n\r\n"
        "id: 2-0\revent: progress\rdata: {\"progress\":50}\r\r"
        "id: 3-0\nevent: status\ndata: {\"status\":\"completed\"}\n\n";
    sse_parser whole;
    auto expected = whole.feed(stream);
    ASSERT_EQ(expected.size(), 3u);
    EXPECT_EQ(expected[2].id, "3-0");
    EXPECT_EQ(expected[1].data, R"({"progress":50})");
    sse_parser bytes;
    auto got = feed_bytewise(bytes, stream);
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].id, expected[i].id);
        EXPECT_EQ(got[i].type, expected[i].type);
        EXPECT_EQ(got[i].data, expected[i].data);
    }
}

TEST(SseParser, CrLfSplitAcrossChunksIsOneLineBreak) {
    sse_parser p;
    EXPECT_TRUE(p.feed("data: a\r").empty());
    // The '\n' completes "\r\n"; were it a second line break, the event would dispatch now.
    EXPECT_TRUE(p.feed("\ndata: b\r").empty());
    auto ev = p.feed("\n\r\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, "a\nb");
}

TEST(SseParser, CommentsAndUnknownFieldsAreIgnored) {
    sse_parser p;
    auto ev = p.feed(": ping\n\nfoo: bar\ndata: x\n\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, "x");
}

TEST(SseParser, IdWithoutDataUpdatesLastEventIdOnly) {
    sse_parser p;
    EXPECT_TRUE(p.feed("id: 9-1\n\n").empty());
    EXPECT_EQ(p.last_event_id(), "9-1");
    auto ev = p.feed("data: y\n\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].id, "9-1");  // the id stays in effect
}

TEST(SseParser, RetryFieldIsParsed) {
    sse_parser p;
    p.feed("retry: 1500\n\n");
    ASSERT_TRUE(p.retry_ms());
    EXPECT_EQ(*p.retry_ms(), 1500);
    p.feed("retry: soon\n\n");
    EXPECT_EQ(*p.retry_ms(), 1500);
}

TEST(SseParser, LeadingByteOrderMarkIsSkippedEvenWhenSplit) {
    sse_parser p;
    EXPECT_TRUE(p.feed("\xEF").empty());
    EXPECT_TRUE(p.feed("\xBB").empty());
    auto ev = p.feed(
        "\xBF"
        "data: z\n\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, "z");
}

TEST(SseParser, ResetPendingDropsAHalfEventButKeepsTheId) {
    sse_parser p;
    p.feed("id: 4-0\ndata: done\n\nid: 5-0\ndata: half");
    EXPECT_EQ(p.last_event_id(), "4-0");  // 5-0 has not ended: resume after 4-0
    p.reset_pending();                    // the connection dropped mid-event
    auto ev = p.feed("data: whole\n\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, "whole");
    EXPECT_EQ(ev[0].id, "4-0");  // the half event's id was forgotten too
}
