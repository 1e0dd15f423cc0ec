// app/worker_command.hpp
// `spool worker`: a worker process serving the configured queues.
#pragma once

#include "config/config.hpp"

namespace spool::app {

// Runs until SIGINT/SIGTERM (graceful stop) and returns the exit code.
int run_worker(const conf::flag_values& flags);

}  // namespace spool::app
