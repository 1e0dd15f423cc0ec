// src/supervisor/test_support.hpp
// Helpers shared by the supervisor tests (test-only): drive an io_context until a
// condition holds, and check on processes that are not our children.
#pragma once

#include "util/asio.hpp"

#include <signal.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>

namespace spool::supervisor::test {

// Runs handlers of `ctx` until `pred` holds or `timeout` passes; returns pred().
inline bool run_until(asio::io_context& ctx, const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        ctx.restart();
        ctx.run_one_for(std::chrono::milliseconds{5});
    }
    return true;
}

// True while `pid` exists and is not a zombie.
inline bool alive(int pid) {
    if (pid <= 0 || ::kill(pid, 0) != 0) return false;
    std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
    std::string line;
    std::getline(stat, line);
    auto p = line.rfind(')');
    return p == std::string::npos || p + 2 >= line.size() || line[p + 2] != 'Z';
}

// True once `pid` catches or ignores `sig` (a shell has run its `trap`): reads
// SigCgt/SigIgn of /proc/<pid>/status.
inline bool handles_signal(int pid, int sig) {
    std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
    unsigned long long bit = 1ULL << (sig - 1);
    for (std::string line; std::getline(status, line);) {
        if (line.starts_with("SigCgt:") || line.starts_with("SigIgn:"))
            if (std::stoull(line.substr(7), nullptr, 16) & bit) return true;
    }
    return false;
}

}  // namespace spool::supervisor::test
