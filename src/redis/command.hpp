// src/redis/command.hpp
// A Redis command as an argument list, encoded to RESP2 with hiredis's formatter.
//   command{"HSET", key, "status", "queued"}.arg(42)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace spool::redis {

class command {
public:
    command() = default;
    template <class... Args>
        requires(!(sizeof...(Args) == 1 && (std::is_same_v<std::remove_cvref_t<Args>, command> && ...)))
    explicit command(Args&&... args) {
        args_.reserve(sizeof...(Args));
        (arg(std::forward<Args>(args)), ...);
    }

    command& arg(std::string_view s) {
        args_.emplace_back(s);
        return *this;
    }
    command& arg(std::string&& s) {
        args_.emplace_back(std::move(s));
        return *this;
    }
    command& arg(const std::string& s) { return arg(std::string_view{s}); }
    command& arg(const char* s) { return arg(std::string_view{s}); }
    template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    command& arg(I v) {
        args_.emplace_back(std::to_string(v));
        return *this;
    }
    command& arg(double v);

    const std::vector<std::string>& args() const noexcept { return args_; }
    std::vector<std::string>& args() noexcept { return args_; }
    bool empty() const noexcept { return args_.empty(); }
    // The command name, upper-cased ("EVALSHA").
    std::string name() const;
    // Appends the RESP2 encoding of this command to `out`.
    void encode_to(std::string& out) const;

private:
    std::vector<std::string> args_;
};

}  // namespace spool::redis
