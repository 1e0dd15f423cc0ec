// src/redis/cluster_slots.cpp
#include "redis/cluster_slots.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace spool::redis::cluster {

namespace {

constexpr std::array<std::uint16_t, 256> make_crc_table() {
    std::array<std::uint16_t, 256> t{};
    for (int i = 0; i < 256; ++i) {
        std::uint16_t c = static_cast<std::uint16_t>(i << 8);
        for (int b = 0; b < 8; ++b) c = static_cast<std::uint16_t>((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
        t[static_cast<std::size_t>(i)] = c;
    }
    return t;
}
constexpr auto crc_table = make_crc_table();

std::uint16_t crc16(std::string_view s) {
    std::uint16_t crc = 0;
    for (unsigned char ch : s)
        crc = static_cast<std::uint16_t>((crc << 8) ^ crc_table[((crc >> 8) ^ ch) & 0xff]);
    return crc;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) ==
                      std::toupper(static_cast<unsigned char>(y));
           });
}

bool parse_u16(std::string_view s, std::uint16_t& out) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v > 65535) return false;
    out = static_cast<std::uint16_t>(v);
    return true;
}

// Commands without a key: any node answers them.
constexpr std::string_view keyless[] = {
    "PING",       "INFO",        "PUBLISH",      "SCRIPT",   "CLIENT",   "CONFIG",   "WAIT",     "SCAN",
    "KEYS",       "DBSIZE",      "TIME",         "FLUSHALL", "FLUSHDB",  "CLUSTER",  "ROLE",     "HELLO",
    "AUTH",       "SELECT",      "ECHO",         "COMMAND",  "LATENCY",  "SLOWLOG",  "READONLY", "READWRITE",
    "ASKING",     "MULTI",       "EXEC",         "DISCARD",  "LASTSAVE", "FUNCTION", "ACL",      "SUBSCRIBE",
    "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SENTINEL"};

}  // namespace

std::uint16_t slot_of(std::string_view key) {
    auto open = key.find('{');
    if (open != std::string_view::npos) {
        auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16(key) & (slot_count - 1));
}

std::optional<std::uint16_t> slot_of(const command& cmd) {
    const auto& a = cmd.args();
    if (a.size() < 2) return std::nullopt;
    const std::string_view name = a[0];
    if (iequals(name, "EVAL") || iequals(name, "EVALSHA") || iequals(name, "EVAL_RO") ||
        iequals(name, "EVALSHA_RO") || iequals(name, "FCALL") || iequals(name, "FCALL_RO")) {
        std::uint16_t numkeys = 0;
        if (a.size() < 4 || !parse_u16(a[2], numkeys) || numkeys == 0) return std::nullopt;
        return slot_of(std::string_view{a[3]});
    }
    if (iequals(name, "MEMORY") || iequals(name, "OBJECT")) {  // MEMORY USAGE <key>, OBJECT ENCODING <key>
        if (a.size() < 3) return std::nullopt;
        return slot_of(std::string_view{a[2]});
    }
    if (iequals(name, "XREAD") || iequals(name, "XREADGROUP")) {
        for (std::size_t i = 1; i + 1 < a.size(); ++i)
            if (iequals(a[i], "STREAMS")) return slot_of(std::string_view{a[i + 1]});
        return std::nullopt;
    }
    for (auto k : keyless)
        if (iequals(name, k)) return std::nullopt;
    return slot_of(std::string_view{a[1]});
}

std::optional<redirect> parse_redirect(std::string_view e) {
    redirect r;
    if (e.starts_with("MOVED "))
        e.remove_prefix(6);
    else if (e.starts_with("ASK ")) {
        r.ask = true;
        e.remove_prefix(4);
    } else
        return std::nullopt;
    auto sp = e.find(' ');
    if (sp == std::string_view::npos || !parse_u16(e.substr(0, sp), r.slot) || r.slot >= slot_count)
        return std::nullopt;
    auto addr = e.substr(sp + 1);
    auto colon = addr.rfind(':');
    if (colon == std::string_view::npos || !parse_u16(addr.substr(colon + 1), r.to.port)) return std::nullopt;
    auto host = addr.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    r.to.host = std::string{host};  // empty: the node that answered (resolved by the caller)
    return r;
}

bool is_transient(std::string_view e) {
    return e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") || e.starts_with("LOADING");
}

std::optional<std::vector<slot_range>> parse_slots(const reply& r, const endpoint& asked) {
    if (!r.is_array()) return std::nullopt;
    auto node = [&](const reply& n) -> std::optional<endpoint> {
        if (!n.is_array() || n.elements.size() < 2) return std::nullopt;
        auto port = n.elements[1].as_integer();
        if (!port || *port <= 0 || *port > 65535) return std::nullopt;
        endpoint e{n.elements[0].str, static_cast<std::uint16_t>(*port)};
        if (e.host.empty() || e.host == "?") e.host = asked.host;
        return e;
    };
    std::vector<slot_range> out;
    for (const auto& entry : r.elements) {
        if (!entry.is_array() || entry.elements.size() < 3) return std::nullopt;
        auto first = entry.elements[0].as_integer(), last = entry.elements[1].as_integer();
        if (!first || !last || *first < 0 || *last >= slot_count || *first > *last) return std::nullopt;
        auto master = node(entry.elements[2]);
        if (!master) return std::nullopt;
        slot_range sr{static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last), *master, {}};
        for (std::size_t i = 3; i < entry.elements.size(); ++i)
            if (auto rep = node(entry.elements[i])) sr.replicas.push_back(*rep);
        out.push_back(std::move(sr));
    }
    return out;
}

std::string uncovered(const std::vector<slot_range>& ranges) {
    std::vector<bool> covered(slot_count, false);
    for (const auto& r : ranges)
        for (int s = r.first; s <= r.last; ++s) covered[static_cast<std::size_t>(s)] = true;
    std::string out;
    for (int s = 0; s < slot_count;) {
        if (covered[static_cast<std::size_t>(s)]) {
            ++s;
            continue;
        }
        int e = s;
        while (e + 1 < slot_count && !covered[static_cast<std::size_t>(e + 1)]) ++e;
        if (!out.empty()) out += ", ";
        out += e == s ? std::to_string(s) : std::to_string(s) + "-" + std::to_string(e);
        s = e + 1;
    }
    return out;
}

}  // namespace spool::redis::cluster
