// src/store/partitions_test.cpp
// Partition names: deterministic, parseable back to their queue, and placed
// evenly around the cluster slot ring.
#include "store/partitions.hpp"

#include "redis/cluster_slots.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

using namespace spool::store;

namespace {

int slot_of_queue(const std::string& physical) { return spool::redis::cluster::slot_of("{q:" + physical + "}"); }

int ring_distance(int a, int b) {
    int d = std::abs(a - b);
    return std::min(d, 16384 - d);
}

}  // namespace

TEST(Partitions, PartitionZeroIsTheQueueItself) {
    EXPECT_EQ(partition_queue("orders", 0, 4), "orders");
    EXPECT_EQ(partition_queue("orders", 3, 1), "orders");
    EXPECT_EQ(partition_queues("orders", 1), std::vector<std::string>{"orders"});
}

TEST(Partitions, NamesParseBackToTheirQueueAndIndex) {
    auto parts = partition_queues("orders.eu", 5);
    ASSERT_EQ(parts.size(), 5u);
    std::set<std::string> distinct(parts.begin(), parts.end());
    EXPECT_EQ(distinct.size(), 5u);
    for (int p = 0; p < 5; ++p) {
        EXPECT_EQ(logical_queue(parts[p]), "orders.eu") << parts[p];
        EXPECT_EQ(partition_index(parts[p]), p) << parts[p];
        if (p > 0) {
            EXPECT_EQ(parts[p].rfind("orders.eu#" + std::to_string(p) + ".", 0), 0u) << parts[p];
        }
    }
    EXPECT_EQ(logical_queue("plain"), "plain");
    EXPECT_EQ(partition_index("plain"), 0);
}

TEST(Partitions, NamesAreTheSameEveryTime) {
    // Every process must compute the same names: they are keys in Redis.
    EXPECT_EQ(partition_queues("emails", 3), partition_queues("emails", 3));
    EXPECT_NE(partition_queue("emails", 1, 2), partition_queue("emails", 1, 3));
}

TEST(Partitions, SpreadEvenlyAroundTheSlotRing) {
    for (const char* q : {"orders", "emails", "renders", "a", "webhooks:out"}) {
        for (int n : {2, 3, 4, 8}) {
            auto parts = partition_queues(q, n);
            const int base = slot_of_queue(parts[0]);
            for (int p = 1; p < n; ++p) {
                const int target = (base + p * 16384 / n) % 16384;
                // 256 salts tried: the best lands within a few dozen slots of its place.
                EXPECT_LE(ring_distance(slot_of_queue(parts[p]), target), 300) << q << " n=" << n << " p=" << p;
            }
        }
    }
}

TEST(Partitions, ThreePartitionsLandOnThreeEqualSlotRanges) {
    // What `redis-cli --cluster create` makes of 3 masters: 0-5460, 5461-10922, 10923-16383.
    auto master = [](int slot) { return slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2; };
    int spread = 0, tried = 0;
    for (int i = 0; i < 200; ++i) {
        auto parts = partition_queues("q" + std::to_string(i), 3);
        std::set<int> masters;
        for (const auto& p : parts) masters.insert(master(slot_of_queue(p)));
        ++tried;
        if (masters.size() == 3) ++spread;
    }
    // Only a queue whose own slot sits within a few dozen slots of a range's edge
    // may share a master (random placement would spread 2 in 9).
    EXPECT_GE(spread, tried * 95 / 100);
}

TEST(Partitions, AUniqueKeyAlwaysMapsToOnePartition) {
    EXPECT_EQ(partition_of_key("invoice-17", 1), 0);
    std::set<int> seen;
    for (int i = 0; i < 100; ++i) {
        auto key = "key-" + std::to_string(i);
        int p = partition_of_key(key, 4);
        EXPECT_GE(p, 0);
        EXPECT_LT(p, 4);
        EXPECT_EQ(p, partition_of_key(key, 4));
        seen.insert(p);
    }
    EXPECT_EQ(seen.size(), 4u);
}
