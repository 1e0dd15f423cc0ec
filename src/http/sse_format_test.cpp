// src/http/sse_format_test.cpp
#include "http/sse_format.hpp"

#include <gtest/gtest.h>

using namespace spool;
using namespace spool::http;

TEST(SseFormat, FramesOneEvent) {
    job_event e{"1700000000000-0", "status", R"({"status":"queued"})"};
    EXPECT_EQ(format_sse(e), "id: 1700000000000-0\nevent: status\ndata: {\"status\":\"queued\"}\n\n");
}

TEST(SseFormat, SplitsMultiLineData) {
    job_event e{"1-0", "progress", "a\nb\r\nc"};
    EXPECT_EQ(format_sse(e), "id: 1-0\nevent: progress\ndata: a\ndata: b\ndata: c\n\n");
}

TEST(SseFormat, DropsLineBreaksFromIdAndType) {
    job_event e{"1-0\nevil: x", "sta\rtus", "{}"};
    EXPECT_EQ(format_sse(e), "id: 1-0evil: x\nevent: status\ndata: {}\n\n");
}

TEST(SseFormat, CommentIsPing) { EXPECT_EQ(format_sse_comment("ping"), ": ping\n\n"); }

TEST(SseFormat, DetectsTerminalEvents) {
    EXPECT_TRUE(is_terminal_event({"1-0", "status", R"({"status":"completed"})"}));
    EXPECT_TRUE(is_terminal_event({"1-0", "status", R"({"status":"failed","error":"x"})"}));
    EXPECT_TRUE(is_terminal_event({"1-0", "status", R"({"status":"cancelled"})"}));
    EXPECT_TRUE(is_terminal_event({"1-0", "status", R"({"status":"expired"})"}));
    EXPECT_FALSE(is_terminal_event({"1-0", "status", R"({"status":"in_progress"})"}));
    EXPECT_FALSE(is_terminal_event({"1-0", "progress", R"({"progress":50})"}));
    EXPECT_FALSE(is_terminal_event({"1-0", "status", "not json"}));
    EXPECT_EQ(event_status({"1-0", "status", R"({"status":"scheduled"})"}), job_status::scheduled);
}

TEST(SseFormat, ValidatesEventIds) {
    for (const char* ok : {"0", "1700000000000", "1700000000000-0", "1700000000000-12",
                           "18446744073709551615-18446744073709551615"})
        EXPECT_TRUE(is_valid_event_id(ok)) << ok;
    for (const char* bad : {"", "garbage", "-1", "$", "99999999999999999999-0", "1-", "-0", "1-2-3", "1 ",
                            "+5", "1-x", "18446744073709551616"})
        EXPECT_FALSE(is_valid_event_id(bad)) << bad;
}
