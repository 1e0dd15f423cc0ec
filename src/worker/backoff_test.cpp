// src/worker/backoff_test.cpp
#include "worker/backoff.hpp"

#include <gtest/gtest.h>

using spool::worker_detail::retry_backoff;
using namespace std::chrono_literals;

TEST(Backoff, DoublesPerAttemptWithinTheJitterBand) {
    for (int attempt = 1; attempt <= 6; ++attempt) {
        auto full = 60000ms * (1 << (attempt - 1));
        EXPECT_EQ(retry_backoff(60000ms, attempt, 0.0), full / 2) << attempt;
        EXPECT_EQ(retry_backoff(60000ms, attempt, 1.0), full) << attempt;
        auto mid = retry_backoff(60000ms, attempt, 0.5);
        EXPECT_GT(mid, full / 2);
        EXPECT_LT(mid, full);
    }
}

TEST(Backoff, IsCappedAndZeroBaseMeansNoDelay) {
    EXPECT_EQ(retry_backoff(60000ms, 60, 1.0), spool::worker_detail::max_backoff);
    EXPECT_EQ(retry_backoff(0ms, 3, 0.7), 0ms);
    EXPECT_EQ(retry_backoff(10ms, 0, 1.0), 10ms);  // attempt numbers start at 1; 0 is treated as 1
}
