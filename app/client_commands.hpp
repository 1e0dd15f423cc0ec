// app/client_commands.hpp
// The CLI client of the HTTP API: `spool submit | status | result | cancel |
// retry | list | queues | workers | stats | watch` and `spool schedule add |
// list | rm | pause | resume | trigger`. Each subcommand takes
// --server (env SPOOL_SERVER, default http://127.0.0.1:8080), --api-key (env
// SPOOL_API_KEY, sent as a bearer token) and --json (print the server's JSON).
//
// Exit codes: 0 ok; 1 the job ended failed/cancelled/expired (watch, submit
// --wait) or the API refused the request (4xx/5xx: unknown job, result not
// ready, ...); 2 usage error; 3 server unreachable. Every failure prints one
// readable line on stderr ("spool: cannot reach http://127.0.0.1:8080:
// connection refused"); nothing aborts.
//
// main() wiring:
//     CLI::App app{"spool"};
//     spool::cli::add_client_commands(app);
//     try { app.parse(argc, argv); }
//     catch (const CLI::Error& e) { return spool::cli::handle_cli_error(app, e); }
// A subcommand's callback reports a non-zero outcome by throwing
// CLI::RuntimeError(code), which handle_cli_error returns silently (the message
// was already printed).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace CLI {
class App;
class Error;
}  // namespace CLI

namespace spool::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_unreachable = 3;

// Registers the client subcommands (and the `schedule` group) on `app`.
void add_client_commands(CLI::App& app);

// The process exit code for an error thrown by app.parse(): the code carried
// by a CLI::RuntimeError (our commands), 0 for --help/--version, 2 for every
// other CLI11 parse error (CLI11's own codes are 100+).
int exit_code_for(const CLI::Error& e);
// Prints what CLI11 prints for `e` (help text, or the parse error and a hint)
// and returns exit_code_for(e).
int handle_cli_error(const CLI::App& app, const CLI::Error& e);

// "500ms", "10s", "1.5s", "2m", "1h", "1d"; a bare number is seconds. nullopt
// for anything else, negative values included.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// An integer, or "high" (10), "normal" (0), "low" (-10).
std::optional<int> parse_priority(std::string_view text);

}  // namespace spool::cli
