// src/handlers/simulation.hpp
// The `simulation` handler (demos and tests): sleeps `duration_ms` in `steps`
// equal steps, reporting progress after each, then succeeds or fails as asked.
// The payload's `duration_ms`, `steps`, `fail` and `fail_probability` override the
// queue's defaults (1000 ms, 10 steps). Cancellation ends it at once.
#pragma once

#include <spool/config.hpp>
#include <spool/handler.hpp>

#include <string_view>

namespace spool::handlers {

// The payload's overrides applied to `defaults`; a non-object payload changes
// nothing. Throws spool::invalid_input on a wrong type or range
// ("duration_ms: expected an integer 0..86400000").
simulation_options simulation_params(const simulation_options& defaults, std::string_view payload);

// Result: {"simulated":true,"steps":N,"duration_ms":D,"attempt":A,"payload":<payload>}.
// Failures: job_failure "simulated failure" (fail) or "simulated failure
// (fail_probability 0.3)"; cancellation: job_failure with the reason.
handler make_simulation_handler(const simulation_options& defaults);

}  // namespace spool::handlers
