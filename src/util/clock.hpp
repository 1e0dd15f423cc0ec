// src/util/clock.hpp
// Wall-clock time as milliseconds since the epoch, behind an interface so tests can
// advance a manual_clock instead of sleeping. Redis scores and job timestamps use it.
#pragma once

#include <spool/job.hpp>

#include <atomic>
#include <chrono>

namespace spool {

class clock {
public:
    virtual ~clock() = default;
    virtual millis now() const noexcept = 0;
};

class system_clock final : public clock {
public:
    millis now() const noexcept override {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
    // The process-wide instance.
    static const system_clock& instance() noexcept {
        static const system_clock c;
        return c;
    }
};

class manual_clock final : public clock {
public:
    explicit manual_clock(millis start = 1'700'000'000'000) : now_{start} {}
    millis now() const noexcept override { return now_.load(); }
    void advance(std::chrono::milliseconds d) noexcept { now_ += d.count(); }
    void set(millis t) noexcept { now_ = t; }

private:
    std::atomic<millis> now_;
};

inline millis now_millis() noexcept { return system_clock::instance().now(); }

}  // namespace spool
