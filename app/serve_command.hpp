// app/serve_command.hpp
// `spool serve`: the HTTP API, the maintenance loops and a supervised pool of
// worker processes; with no Redis configured, an embedded redis-server too.
#pragma once

#include "config/config.hpp"

namespace CLI {
class App;
}

namespace spool::app {

// Adds serve's own flags (--host, --port, --workers, --data-dir, --max-payload-bytes).
void add_serve_flags(CLI::App& cmd, conf::flag_values& flags);
// Runs until SIGINT/SIGTERM, then drains and stops everything; returns the exit code.
int run_serve(const conf::flag_values& flags);

}  // namespace spool::app
