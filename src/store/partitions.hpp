// src/store/partitions.hpp
// Partitioned queues (docs/operations.md, "Scaling out"): one logical queue spread
// over N physical queues, each with a hash tag of its own, so a Redis Cluster can
// serve them from different shards. Partition 0 is the logical queue itself (its
// keys are those of an unpartitioned queue: `partitions: 1` changes nothing);
// partition p > 0 is the physical queue "<queue>#<p>.<salt>". '#' is not allowed
// in queue names, so the logical name is everything before it.
//
// The salt places the partitions evenly around the cluster's slot ring, starting
// from partition 0's slot: on a cluster whose masters own equal slot ranges (what
// `redis-cli --cluster create` makes), N partitions on N or more masters land on
// N different masters. Names depend only on (queue, p, N), so every process
// computes the same ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spool::store {

inline constexpr int max_partitions = 64;

// "orders#2.17" -> "orders"; "orders" -> "orders".
std::string_view logical_queue(std::string_view physical) noexcept;
// "orders#2.17" -> 2; "orders" -> 0.
int partition_index(std::string_view physical) noexcept;
// The physical queue of partition p (0 <= p < n) of `queue`.
std::string partition_queue(std::string_view queue, int p, int n);
// All n of them, partition 0 first.
std::vector<std::string> partition_queues(std::string_view queue, int n);
// The partition a unique_key always maps to (FNV-1a), so dedupe holds per key.
int partition_of_key(std::string_view unique_key, int n) noexcept;

}  // namespace spool::store
