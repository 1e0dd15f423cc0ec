// src/redis/command_test.cpp
#include "redis/command.hpp"

#include <gtest/gtest.h>

#include <limits>

using spool::redis::command;

namespace {

std::string encode(const command& c) {
    std::string out;
    c.encode_to(out);
    return out;
}

}  // namespace

TEST(Command, EncodesRespArray) {
    EXPECT_EQ(encode(command{"SET", "key", "value"}), "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
}

TEST(Command, EncodingIsBinarySafe) {
    std::string odd{"a\r\nb\0c", 6};
    std::string want{"*3\r\n$3\r\nSET\r\n$6\r\na\r\nb\0c\r\n$0\r\n\r\n", 31};
    EXPECT_EQ(encode(command("SET", odd, "")), want);
}

TEST(Command, EncodesNumbers) {
    command c{"ZADD", "z", 1.5, "m"};
    c.arg(-42).arg(std::uint64_t{18446744073709551615u}).arg(std::numeric_limits<double>::infinity());
    const auto& a = c.args();
    ASSERT_EQ(a.size(), 7u);
    EXPECT_EQ(a[2], "1.5");
    EXPECT_EQ(a[4], "-42");
    EXPECT_EQ(a[5], "18446744073709551615");
    EXPECT_EQ(a[6], "inf");
    EXPECT_EQ(command{}.arg(0.1).args()[0], "0.1");
}

TEST(Command, AppendsToBuffer) {
    std::string out = "prefix";
    command{"PING"}.encode_to(out);
    command{"GET", "k"}.encode_to(out);
    EXPECT_EQ(out, "prefix*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

TEST(Command, EncodesManyArguments) {
    command c{"RPUSH", "list"};
    std::string expected = "*42\r\n$5\r\nRPUSH\r\n$4\r\nlist\r\n";
    for (int i = 0; i < 40; ++i) {
        c.arg(i);
        auto s = std::to_string(i);
        expected += "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
    }
    EXPECT_EQ(encode(c), expected);
}

TEST(Command, EmptyCommandEncodesNothing) {
    EXPECT_TRUE(command{}.empty());
    EXPECT_EQ(encode(command{}), "");
}

TEST(Command, NameIsUpperCase) {
    EXPECT_EQ(command("evalsha", "abc").name(), "EVALSHA");
    EXPECT_EQ(command{}.name(), "");
}

TEST(Command, MovesStringArguments) {
    std::string big(1000, 'x');
    command c{"SET", "k"};
    c.arg(std::move(big));
    EXPECT_EQ(c.args()[2].size(), 1000u);
}
