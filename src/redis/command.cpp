// src/redis/command.cpp
#include "redis/command.hpp"

#include <array>
#include <cctype>
#include <charconv>

namespace spool::redis {

command& command::arg(double v) {
    // Shortest text that reads back as the same double ("inf" and "-inf" included,
    // which Redis accepts for scores).
    std::array<char, 32> buf{};
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    args_.emplace_back(buf.data(), end);
    return *this;
}

std::string command::name() const {
    if (args_.empty()) return {};
    std::string n = args_.front();
    for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return n;
}

void command::encode_to(std::string& out) const {
    if (args_.empty()) return;
    // RESP2: *<argc> then $<length> and the bytes of each argument, each line ending
    // in CRLF. Written straight into `out` (a formatter building its own buffer per
    // command cost a tenth of a bulk submitter's CPU in allocations and copies).
    std::array<char, 24> buf{};
    auto line = [&](char kind, std::size_t n) {
        out += kind;
        auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), n);
        out.append(buf.data(), end);
        out += "\r\n";
    };
    line('*', args_.size());
    for (const auto& a : args_) {
        line('$', a.size());
        out += a;
        out += "\r\n";
    }
}

}  // namespace spool::redis
