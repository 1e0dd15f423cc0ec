// src/util/event_loop.cpp
#include <spool/event_loop.hpp>

namespace spool {

std::size_t run_polling(boost::asio::io_context& io, std::chrono::microseconds spin,
                        const std::function<bool()>& done) {
    using clock = std::chrono::steady_clock;
    std::size_t handled = 0;
    auto last_work = clock::now();
    while (!done()) {
        if (spin.count() > 0) {
            if (auto n = io.poll(); n > 0) {
                handled += n;
                last_work = clock::now();
                continue;
            }
            // poll() found nothing ready: stopped (or out of work), still within
            // the spin budget (poll again), or idle long enough to block.
            if (io.stopped()) return handled;
            if (clock::now() - last_work < spin) continue;
        }
        auto n = io.run_one();
        if (n == 0) return handled;
        handled += n;
        last_work = clock::now();
    }
    return handled;
}

std::size_t run_polling(boost::asio::io_context& io, std::chrono::microseconds spin) {
    if (spin.count() <= 0) return io.run();
    return run_polling(io, spin, [] { return false; });
}

}  // namespace spool
