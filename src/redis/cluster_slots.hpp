// src/redis/cluster_slots.hpp
// Redis Cluster's addressing, without I/O: which of the 16384 hash slots a key
// (or a command) belongs to, what a MOVED / ASK redirection says, and the slot map
// a CLUSTER SLOTS reply describes. cluster.cpp routes with these.
#pragma once

#include "redis/command.hpp"
#include "redis/options.hpp"
#include "redis/reply.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool::redis::cluster {

inline constexpr int slot_count = 16384;

// CRC16 (XMODEM) of the key's hash tag (the part between the first '{' and the
// next '}', when not empty) or of the whole key, mod 16384.
std::uint16_t slot_of(std::string_view key);

// The slot a command addresses: that of its first key (EVAL/EVALSHA: the first of
// KEYS), or nullopt for a command without keys (PING, INFO, PUBLISH, SCRIPT, ...).
std::optional<std::uint16_t> slot_of(const command& cmd);

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381".
struct redirect {
    bool ask = false;
    std::uint16_t slot = 0;
    endpoint to;
};
std::optional<redirect> parse_redirect(std::string_view error);
// TRYAGAIN (a multi-key command during a migration), CLUSTERDOWN, LOADING: worth retrying.
bool is_transient(std::string_view error);

// One contiguous range of slots and the node that serves it.
struct slot_range {
    std::uint16_t first = 0, last = 0;
    endpoint master;
    std::vector<endpoint> replicas;
};
// The ranges of a CLUSTER SLOTS reply. A node listed with an empty address is the
// one that answered (`asked`). nullopt: not a CLUSTER SLOTS reply.
std::optional<std::vector<slot_range>> parse_slots(const reply& r, const endpoint& asked);
// The slots no range covers, as text ("0-5460, 10923"): empty when all are served.
std::string uncovered(const std::vector<slot_range>& ranges);

}  // namespace spool::redis::cluster
