// app/output_test.cpp
#include "app/output.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

using namespace spool::cli;

TEST(ProgressBar, FillsInProportion) {
    EXPECT_EQ(progress_bar(0), "[..........]");
    EXPECT_EQ(progress_bar(50), "[#####.....]");
    EXPECT_EQ(progress_bar(59), "[#####.....]");
    EXPECT_EQ(progress_bar(100), "[##########]");
    EXPECT_EQ(progress_bar(30, 20), "[######..............]");
}

TEST(ProgressBar, ClampsOutOfRangePercent) {
    EXPECT_EQ(progress_bar(-5), "[..........]");
    EXPECT_EQ(progress_bar(250), "[##########]");
}

TEST(ProgressBar, LineShowsPercentMessageAndStatus) {
    EXPECT_EQ(progress_line(50, "step 5/10", "in_progress"), "[#####.....]  50%  step 5/10  in_progress");
    EXPECT_EQ(progress_line(100, "", "completed"), "[##########] 100%  completed");
    EXPECT_EQ(progress_line(5, "", "queued"), "[..........]   5%  queued");
}

TEST(ProgressBar, MessageControlCharactersBecomeSpaces) {
    EXPECT_EQ(progress_line(0, "a\nb\rc", "queued"), "[..........]   0%  a b c  queued");
}

TEST(ProgressBar, RedrawReturnsToLineStartAndErasesTheRest) {
    auto s = progress_redraw(50, "x", "in_progress");
    EXPECT_EQ(s.front(), '\r');
    EXPECT_TRUE(s.ends_with("\x1b[K"));
    EXPECT_NE(s.find("[#####.....]  50%  x  in_progress"), std::string::npos);
}

TEST(Table, AlignsColumnsAndLeavesTheLastUnpadded) {
    table t{{"ID", "QUEUE", "STATUS"}};
    t.add_row({"1", "default", "queued"});
    t.add_row({"22", "q", "completed"});
    EXPECT_EQ(t.render(),
              "ID  QUEUE    STATUS\n"
              "1   default  queued\n"
              "22  q        completed\n");
}

TEST(Table, ShortRowsAreFilledAndUtf8CountsCodePoints) {
    table t{{"A", "B", "C"}};
    t.add_row({"é", "x"});
    t.add_row({"ab", "yy", "z"});
    EXPECT_EQ(t.render(),
              "A   B   C\n"
              "é   x\n"
              "ab  yy  z\n");
}

TEST(DisplayWidth, CountsCodePoints) {
    EXPECT_EQ(display_width("abc"), 3u);
    EXPECT_EQ(display_width("é"), 1u);
    EXPECT_EQ(display_width("日本"), 2u);
}

TEST(KeyValues, AlignsValues) {
    EXPECT_EQ(key_values({{"job_id", "1"}, {"status", "queued"}, {"progress", "5%"}}),
              "job_id:    1\n"
              "status:    queued\n"
              "progress:  5%\n");
}

TEST(CellText, RendersJsonValuesForHumans) {
    auto v = boost::json::parse(R"({"s":"text","n":null,"b":true,"i":42,"a":["x","y"],"e":[],"o":{"k":1}})");
    const auto& o = v.get_object();
    EXPECT_EQ(cell_text(o.at("s")), "text");
    EXPECT_EQ(cell_text(o.at("n")), "-");
    EXPECT_EQ(cell_text(o.at("b")), "yes");
    EXPECT_EQ(cell_text(o.at("i")), "42");
    EXPECT_EQ(cell_text(o.at("a")), "x,y");
    EXPECT_EQ(cell_text(o.at("e")), "-");
    EXPECT_EQ(cell_text(o.at("o")), R"({"k":1})");
}

TEST(JsonTree, IndentsNestedObjects) {
    auto v =
        boost::json::parse(R"({"total_jobs":3,"status_breakdown":{"queued":1,"completed":2},"redis":true})");
    EXPECT_EQ(json_tree(v),
              "total_jobs:  3\n"
              "status_breakdown:\n"
              "  queued:     1\n"
              "  completed:  2\n"
              "redis:       yes\n");
}
