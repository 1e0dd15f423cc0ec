// app/main.cpp
// `spool`: one binary, every role. Subcommands: serve, worker, bench, and the CLI
// client commands (submit, status, result, ...).
#include "app/bench.hpp"
#include "app/client_commands.hpp"
#include "app/common.hpp"
#include "app/serve_command.hpp"
#include "app/worker_command.hpp"
#include "util/log.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"Spool: a distributed job queue on Redis"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "spool 0.1.0");

    spool::app::bench_options bench;
    auto* b = app.add_subcommand("bench", "Measure enqueue/process throughput and end-to-end latency");
    b->add_option("--redis", bench.redis_url, "Redis URL")->envname("REDIS_URL")->required();
    b->add_option("--jobs", bench.jobs, "Jobs per throughput phase")->capture_default_str();
    b->add_option("--concurrency", bench.concurrency, "Echo worker concurrency")->capture_default_str();
    b->add_option("--rate", bench.rate, "Jobs per second in the latency phase")->capture_default_str();
    b->add_option("--latency-jobs", bench.latency_jobs, "Jobs in the latency phase")->capture_default_str();
    b->add_option("--batch", bench.batch, "Jobs per bulk submit")->capture_default_str();
    b->add_option("--busy-poll-us", bench.busy_poll_us,
                  "Producer and worker poll this long after each event before sleeping (0: off)")
        ->capture_default_str()
        ->check(CLI::Range(0L, 1000000L));
    b->add_option("--workers", bench.workers,
                  "Worker processes for the process phase (0: one worker inside the bench process)")
        ->capture_default_str()
        ->check(CLI::Range(0, 64));
    b->add_option("--payload-bytes", bench.payload_bytes, "Payload (and result) size per job (0: a tiny {\"i\":n})")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 20));
    b->add_flag("--replicated", bench.replicated,
                "durability: replicated (submits and completions wait for a replica; the Redis needs one)");
    b->add_option("--partitions", bench.partitions, "Partitions of each bench queue (1..64)")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    b->add_flag("--json", bench.json, "Print one JSON object");
    int code = 0;
    b->callback([&] { code = spool::app::run_bench(bench); });

    spool::conf::flag_values serve_flags;
    auto* sv = app.add_subcommand("serve", "Run the HTTP API, maintenance loops and supervised workers");
    spool::app::add_config_flags(*sv, serve_flags);
    spool::app::add_serve_flags(*sv, serve_flags);
    sv->callback([&] { code = spool::app::run_serve(serve_flags); });

    spool::conf::flag_values worker_flags;
    auto* wk = app.add_subcommand("worker", "Run a worker process: claim and run jobs of the configured queues");
    spool::app::add_config_flags(*wk, worker_flags);
    wk->callback([&] { code = spool::app::run_worker(worker_flags); });

    spool::cli::add_client_commands(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Error& e) {
        return spool::cli::handle_cli_error(app, e);
    }
    return code;
}
