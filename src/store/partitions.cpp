// src/store/partitions.cpp
#include "store/partitions.hpp"

#include "redis/cluster_slots.hpp"

#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

namespace spool::store {

namespace {

constexpr int slot_count = 16384;
constexpr int salts_tried = 256;

int tag_slot(std::string_view physical) {
    std::string key;
    key.reserve(physical.size() + 4);
    key.append("{q:").append(physical).append("}");
    return redis::cluster::slot_of(key);
}

int ring_distance(int a, int b) {
    int d = std::abs(a - b);
    return std::min(d, slot_count - d);
}

std::string name_of(std::string_view queue, int p, int salt) {
    std::string s{queue};
    s.append("#").append(std::to_string(p)).append(".").append(std::to_string(salt));
    return s;
}

// The salt whose slot is closest to partition p's place on the ring (the
// smallest such salt on ties): a few hundred CRC16s, once per process.
std::string place(std::string_view queue, int p, int n) {
    const int target = (tag_slot(queue) + static_cast<int>(static_cast<long long>(p) * slot_count / n)) % slot_count;
    int best_salt = 0, best = slot_count;
    for (int salt = 0; salt < salts_tried && best > 0; ++salt) {
        int d = ring_distance(tag_slot(name_of(queue, p, salt)), target);
        if (d < best) best = d, best_salt = salt;
    }
    return name_of(queue, p, best_salt);
}

}  // namespace

std::string_view logical_queue(std::string_view physical) noexcept {
    return physical.substr(0, physical.find('#'));
}

int partition_index(std::string_view physical) noexcept {
    auto hash = physical.find('#');
    if (hash == std::string_view::npos) return 0;
    int p = 0;
    for (auto i = hash + 1; i < physical.size() && physical[i] >= '0' && physical[i] <= '9'; ++i)
        p = p * 10 + (physical[i] - '0');
    return p;
}

std::string partition_queue(std::string_view queue, int p, int n) {
    if (p <= 0 || n <= 1) return std::string{queue};
    static std::mutex mu;
    static std::map<std::tuple<std::string, int, int>, std::string, std::less<>> cache;
    std::lock_guard lock{mu};
    auto key = std::make_tuple(std::string{queue}, p, n);
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, place(queue, p, n)).first;
    return it->second;
}

std::vector<std::string> partition_queues(std::string_view queue, int n) {
    std::vector<std::string> out;
    n = std::max(1, n);
    out.reserve(static_cast<std::size_t>(n));
    for (int p = 0; p < n; ++p) out.push_back(partition_queue(queue, p, n));
    return out;
}

int partition_of_key(std::string_view unique_key, int n) noexcept {
    if (n <= 1) return 0;
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : unique_key) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return static_cast<int>(h % static_cast<std::uint64_t>(n));
}

}  // namespace spool::store
