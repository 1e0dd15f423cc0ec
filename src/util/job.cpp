// src/util/job.cpp
// Wire names of job statuses.
#include <spool/job.hpp>

#include <array>

namespace spool {

namespace {
constexpr std::array<std::string_view, 9> status_names{"queued",    "scheduled", "validating", "in_progress",
                                                       "completed", "failed",    "cancelled",  "expired",
                                                       "waiting"};
}

std::string_view to_string(job_status s) noexcept { return status_names[static_cast<std::size_t>(s)]; }

std::optional<job_status> parse_job_status(std::string_view s) noexcept {
    for (std::size_t i = 0; i < status_names.size(); ++i)
        if (status_names[i] == s) return static_cast<job_status>(i);
    return std::nullopt;
}

bool is_terminal(job_status s) noexcept {
    return s == job_status::completed || s == job_status::failed || s == job_status::cancelled ||
           s == job_status::expired;
}

}  // namespace spool
