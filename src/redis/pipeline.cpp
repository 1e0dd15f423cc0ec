// src/redis/pipeline.cpp
#include "redis/pipeline.hpp"

#include <boost/asio/error.hpp>

#include <algorithm>
#include <cassert>

namespace spool::redis {

using clock_type = std::chrono::steady_clock;

std::uint64_t pipeline::push(std::vector<command> cmds, clock_type::time_point deadline, completion done) {
    std::uint64_t seq = next_seq_++;
    if (cmds.empty()) {
        // Nothing to send, nothing to wait for.
        std::move(done)(boost::system::error_code{}, std::vector<reply>{});
        return seq;
    }
    std::size_t expected = cmds.size();
    requests_.push_back(request{seq, std::move(cmds), {}, expected, 0, deadline, std::move(done)});
    return seq;
}

std::size_t pipeline::take_writes(std::string& out) {
    std::size_t commands = 0;
    for (std::size_t i = written_; i < requests_.size(); ++i) {
        auto& r = requests_[i];
        for (const auto& c : r.cmds) c.encode_to(out);
        commands += r.cmds.size();
        // The arguments are on their way; free them now rather than when the reply comes.
        std::vector<command>{}.swap(r.cmds);
        r.replies.reserve(r.expected);
    }
    written_ = requests_.size();
    return commands;
}

std::string pipeline::take_writes() {
    std::string out;
    take_writes(out);
    return out;
}

bool pipeline::on_reply(reply r) {
    if (written_ == 0) return false;
    auto& front = requests_.front();
    if (!front.abandoned) front.replies.push_back(std::move(r));
    if (++front.received < front.expected) return true;
    completion done = std::move(front.done);
    std::vector<reply> replies = std::move(front.replies);
    bool abandoned = front.abandoned;
    requests_.pop_front();
    --written_;
    // State is consistent before the completion runs, so it may push again.
    if (!abandoned) std::move(done)(boost::system::error_code{}, std::move(replies));
    return true;
}

void pipeline::fail_all(boost::system::error_code ec) {
    std::deque<request> failed;
    failed.swap(requests_);
    written_ = 0;
    for (auto& r : failed)
        if (!r.abandoned) std::move(r.done)(ec, std::vector<reply>{});
}

std::vector<pipeline::handover> pipeline::take_unwritten() {
    std::vector<handover> out;
    for (std::size_t i = written_; i < requests_.size(); ++i) {
        auto& r = requests_[i];
        if (r.abandoned) continue;
        out.push_back(handover{std::move(r.cmds), r.deadline, std::move(r.done)});
    }
    requests_.erase(requests_.begin() + static_cast<std::ptrdiff_t>(written_), requests_.end());
    return out;
}

void pipeline::fail_written(boost::system::error_code ec) {
    std::vector<completion> failed;
    failed.reserve(written_);
    for (std::size_t i = 0; i < written_; ++i)
        if (!requests_[i].abandoned) failed.push_back(std::move(requests_[i].done));
    requests_.erase(requests_.begin(), requests_.begin() + static_cast<std::ptrdiff_t>(written_));
    written_ = 0;
    for (auto& done : failed) std::move(done)(ec, std::vector<reply>{});
}

bool pipeline::expire(clock_type::time_point now, errc unwritten) {
    std::vector<std::pair<completion, errc>> expired;
    bool written_late = false;
    for (std::size_t i = 0; i < written_; ++i) {
        auto& r = requests_[i];
        if (r.abandoned || r.deadline > now) continue;
        r.abandoned = true;
        written_late = true;
        std::vector<reply>{}.swap(r.replies);
        expired.emplace_back(std::move(r.done), errc::timeout);
    }
    auto first_unwritten = requests_.begin() + static_cast<std::ptrdiff_t>(written_);
    auto keep = std::stable_partition(first_unwritten, requests_.end(),
                                      [now](const request& r) { return r.deadline > now; });
    for (auto it = keep; it != requests_.end(); ++it) expired.emplace_back(std::move(it->done), unwritten);
    requests_.erase(keep, requests_.end());
    for (auto& [done, code] : expired) std::move(done)(make_error_code(code), std::vector<reply>{});
    return written_late;
}

bool pipeline::cancel(std::uint64_t seq) {
    auto it =
        std::find_if(requests_.begin(), requests_.end(), [seq](const request& r) { return r.seq == seq; });
    if (it == requests_.end() || it->abandoned) return false;
    completion done = std::move(it->done);
    if (static_cast<std::size_t>(it - requests_.begin()) < written_) {
        it->abandoned = true;
        std::vector<reply>{}.swap(it->replies);
    } else {
        requests_.erase(it);
    }
    std::move(done)(boost::asio::error::operation_aborted, std::vector<reply>{});
    return true;
}

clock_type::time_point pipeline::next_deadline() const noexcept {
    auto next = clock_type::time_point::max();
    for (const auto& r : requests_)
        if (!r.abandoned && r.deadline < next) next = r.deadline;
    return next;
}

}  // namespace spool::redis
