// src/store/keys.hpp
// Every Redis key name Spool uses (docs/keys.md is the schema). All keys of one
// queue share the hash tag {q:<queue>}, so a script touching one queue's keys
// stays in one Redis Cluster slot.
#pragma once

#include <string>
#include <string_view>

namespace spool::store {

class keys {
public:
    explicit keys(std::string prefix) : prefix_{std::move(prefix)} {}
    const std::string& prefix() const noexcept { return prefix_; }

    // <prefix>:{q:<queue>}:<name>
    std::string queue_key(std::string_view queue, std::string_view name) const {
        std::string k;
        k.reserve(prefix_.size() + queue.size() + name.size() + 8);
        k.append(prefix_).append(":{q:").append(queue).append("}:").append(name);
        return k;
    }
    std::string queued(std::string_view q) const { return queue_key(q, "queued"); }
    std::string scheduled(std::string_view q) const { return queue_key(q, "scheduled"); }
    std::string active(std::string_view q) const { return queue_key(q, "active"); }
    std::string leases(std::string_view q) const { return queue_key(q, "leases"); }
    std::string completed(std::string_view q) const { return queue_key(q, "completed"); }
    std::string failed(std::string_view q) const { return queue_key(q, "failed"); }
    std::string cancelled(std::string_view q) const { return queue_key(q, "cancelled"); }
    // Job indexes for listing (docs/keys.md, "Job indexes"): STREAMs of ids, one entry per
    // script call, for every job (`jobs`) and completed ones (`done`); the sorted sets
    // `all` and `completed` of the classic layout and earlier versions.
    std::string jobs(std::string_view q) const { return queue_key(q, "jobs"); }
    std::string done(std::string_view q) const { return queue_key(q, "done"); }
    std::string all(std::string_view q) const { return queue_key(q, "all"); }
    std::string marker(std::string_view q) const { return queue_key(q, "marker"); }
    std::string meta(std::string_view q) const { return queue_key(q, "meta"); }
    std::string unique(std::string_view q) const { return queue_key(q, "unique"); }
    std::string cancels(std::string_view q) const { return queue_key(q, "cancels"); }
    std::string waiting(std::string_view q) const { return queue_key(q, "waiting"); }     // jobs waiting for parents
    std::string resolved(std::string_view q) const { return queue_key(q, "resolved"); }   // parents' outcomes to deliver

    // HASH bucket start (ms) -> the meta counters then (dashboard charts; docs/keys.md).
    std::string history(std::string_view q) const { return queue_key(q, "history"); }
    std::string job(std::string_view q, std::string_view id) const { return queue_key(q, cat("job:", id)); }
    // A previous version's per-job event stream (read for jobs it wrote; deleted with them).
    std::string events(std::string_view q, std::string_view id) const { return queue_key(q, cat("events:", id)); }
    // LIST of a job's progress events, made by its first one.
    std::string progress(std::string_view q, std::string_view id) const { return queue_key(q, cat("progress:", id)); }
    std::string result(std::string_view q, std::string_view id) const { return queue_key(q, cat("result:", id)); }

    // Global keys (one slot each, never touched by a queue script).
    std::string queues() const { return prefix_ + ":queues"; }    // SET of queue names
    std::string ids() const { return prefix_ + ":ids"; }          // HASH job id -> queue (untagged ids)
    std::string queue_tags() const { return prefix_ + ":queue_tags"; }  // HASH q:<name> <-> n:<tag>, next
    std::string workers() const { return prefix_ + ":workers"; }  // ZSET worker id -> last heartbeat
    std::string worker(std::string_view id) const { return cat(prefix_ + ":worker:", id); }
    std::string updates_channel() const { return prefix_ + ":job_updates"; }
    std::string cancel_channel() const { return prefix_ + ":cancel"; }

private:
    static std::string cat(std::string_view a, std::string_view b) {
        std::string s;
        s.reserve(a.size() + b.size());
        s.append(a).append(b);
        return s;
    }
    std::string prefix_;
};

// Score of a job in the `queued` sorted set: ZPOPMIN takes the highest priority
// first and, within one priority, the earliest enqueue time. Exact in a double:
// (max_priority - priority) < 2^11 and the time offset < 2^42 ms.
inline constexpr long long score_epoch_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
inline constexpr long long priority_stride = 1LL << 42;
inline long long queued_score(int priority, long long enqueued_at_ms) {
    return static_cast<long long>(1000 - priority) * priority_stride + (enqueued_at_ms - score_epoch_ms);
}

}  // namespace spool::store
