// src/redis/command.cpp
#include "redis/command.hpp"

#include <hiredis/hiredis.h>

#include <array>
#include <cctype>
#include <charconv>
#include <new>

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
    // Most commands are short: keep their argv on the stack.
    constexpr std::size_t small = 16;
    std::array<const char*, small> argv_small;
    std::array<std::size_t, small> len_small;
    std::vector<const char*> argv_big;
    std::vector<std::size_t> len_big;
    const char** argv = argv_small.data();
    std::size_t* lens = len_small.data();
    if (args_.size() > small) {
        argv_big.resize(args_.size());
        len_big.resize(args_.size());
        argv = argv_big.data();
        lens = len_big.data();
    }
    for (std::size_t i = 0; i < args_.size(); ++i) {
        argv[i] = args_[i].data();
        lens[i] = args_[i].size();
    }
    // The sds variant formats lengths with hiredis's own integer printer; the plain
    // redisFormatCommandArgv goes through sprintf, which cost 10% of a worker's CPU.
    sds target = nullptr;
    int n = redisFormatSdsCommandArgv(&target, static_cast<int>(args_.size()), argv, lens);
    if (n < 0 || !target) throw std::bad_alloc{};  // the formatter fails only when out of memory
    out.append(target, sdslen(target));
    redisFreeSdsCommand(target);
}

}  // namespace spool::redis
