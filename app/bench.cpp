// app/bench.cpp
// Phases, each against its own key prefix (removed afterwards):
//   enqueue      one producer, each submit awaited before the next
//   enqueue_bulk submit_many in batches (one script call per batch)
//   process      N echo jobs queued first, then one worker (concurrency C) drains
//                them (or K `spool worker` processes: --workers); redis-server's
//                CPU time over this phase / N, the workers' CPU time / N, and
//                Redis memory held per completed (retained) job
//   latency      M jobs submitted at R per second while the worker idles between
//                them; submit start -> completion stored, p50/p99
#include "app/bench.hpp"

#include "redis/cluster_slots.hpp"
#include "redis/connection.hpp"
#include "store/broker.hpp"
#include "store/keys.hpp"
#include "store/partitions.hpp"
#include "util/asio.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

#include <spool/event_loop.hpp>
#include <spool/worker.hpp>

#include <boost/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>

namespace spool::app {

namespace {

using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

template <class T>
T must(result<T> r, const char* what) {
    if (!r) throw std::runtime_error(std::string{what} + ": " + r.error().message());
    return std::move(*r);
}

void must(result<void> r, const char* what) {
    if (!r) throw std::runtime_error(std::string{what} + ": " + r.error().message());
}

// The producer's busy-poll budget (bench_options::busy_poll_us).
std::chrono::microseconds producer_spin{0};

// Runs `aw` to completion on `io` (the caller's thread drives it), polling for
// `producer_spin` after each event before blocking.
template <class T>
T block_on(asio::io_context& io, asio::awaitable<T> aw) {
    std::optional<T> out;
    std::exception_ptr error;
    asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T v) {
        if (e)
            error = e;
        else
            out.emplace(std::move(v));
    });
    io.restart();
    run_polling(io, producer_spin, [&] { return out || error; });
    if (!out && !error)
        throw std::runtime_error("bench: the event loop stopped before the operation finished");
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

struct bench_context {
    asio::io_context io;
    std::shared_ptr<redis::connection> conn;
    // One link per Redis server, for INFO and SCAN: the server, or every master of a cluster.
    std::vector<std::shared_ptr<redis::connection>> servers;
    std::vector<double> cpu_mark;  // each server's CPU seconds when the measured phase began
    std::string url;
    std::string prefix = "spoolbench" + std::to_string(::getpid());
};

// A numeric field of INFO <section> of one server.
double info_number_of(bench_context& b, redis::connection& c, const char* section, const char* field) {
    auto r = must(block_on(b.io, c.exec(redis::command{"INFO", section})), "INFO");
    std::string name = std::string{field} + ":";
    auto pos = r.str.find(name);
    return pos == std::string::npos ? 0 : std::stod(r.str.substr(pos + name.size()));
}

// The same, summed over every server (every master of a cluster).
double info_number(bench_context& b, const char* section, const char* field) {
    double sum = 0;
    for (auto& s : b.servers) sum += info_number_of(b, *s, section, field);
    return sum;
}

// CPU seconds of each server.
std::vector<double> redis_cpu_by_server(bench_context& b) {
    std::vector<double> out;
    for (auto& s : b.servers)
        out.push_back(info_number_of(b, *s, "cpu", "used_cpu_sys") + info_number_of(b, *s, "cpu", "used_cpu_user"));
    return out;
}

double redis_cpu_seconds(bench_context& b) {
    auto by = redis_cpu_by_server(b);
    return std::accumulate(by.begin(), by.end(), 0.0);
}

// The CPU seconds of all servers now, remembering each one's for the per-shard figures.
double mark_cpu(bench_context& b) {
    b.cpu_mark = redis_cpu_by_server(b);
    return std::accumulate(b.cpu_mark.begin(), b.cpu_mark.end(), 0.0);
}

// Fills b.servers: the one server, or a link to every master of the cluster.
void find_servers(bench_context& b, const redis::connection_options& o) {
    b.servers = {b.conn};
    if (!b.conn->is_cluster()) return;
    auto r = must(block_on(b.io, b.conn->exec(redis::command{"CLUSTER", "SLOTS"})), "CLUSTER SLOTS");
    auto ranges = redis::cluster::parse_slots(r, redis::endpoint{o.host, o.port});
    if (!ranges) throw std::runtime_error("CLUSTER SLOTS: unexpected answer");
    std::vector<redis::endpoint> masters;
    for (const auto& range : *ranges)
        if (std::find(masters.begin(), masters.end(), range.master) == masters.end()) masters.push_back(range.master);
    b.servers.clear();
    for (const auto& m : masters) {
        auto mo = o;
        mo.host = m.host;
        mo.port = m.port;
        mo.hosts = {m};
        mo.cluster = redis::cluster_mode::off;
        auto c = redis::connection::create(b.io.get_executor(), mo);
        c->start();
        if (!block_on(b.io, c->wait_connected(std::chrono::seconds{5})))
            throw std::runtime_error("cannot connect to cluster master " + m.host + ":" + std::to_string(m.port));
        b.servers.push_back(c);
    }
}

// Keys UNLINKed by a cleanup are freed by Redis's background thread, whose CPU
// counts in INFO cpu: wait until it is done so the next phase is not billed for it.
void wait_lazyfree(bench_context& b) {
    for (int i = 0; i < 2000 && info_number(b, "memory", "lazyfree_pending_objects") > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds{5});  // polling a counter, bounded
}

// A job's payload: {"i":n}, padded to `bytes` when larger.
std::string make_payload(std::size_t i, std::size_t bytes) {
    std::string p = "{\"i\":" + std::to_string(i);
    if (bytes > p.size() + 9) p += ",\"pad\":\"" + std::string(bytes - p.size() - 9, 'x') + "\"";
    return p + "}";
}
std::size_t payload_size = 0;

// CPU seconds (user + system) a process has used, from /proc/<pid>/stat.
double process_cpu_seconds(pid_t pid) {
    std::ifstream f{"/proc/" + std::to_string(pid) + "/stat"};
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream rest{stat.substr(close + 2)};
    std::string field;
    double ticks = 0;
    for (int i = 3; rest >> field; ++i) {
        if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
        if (i == 15) break;
    }
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double thread_cpu_seconds(std::thread& t) {
    clockid_t id;
    timespec ts{};
    if (::pthread_getcpuclockid(t.native_handle(), &id) != 0 || ::clock_gettime(id, &ts) != 0) return 0;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

asio::awaitable<result<std::size_t>> enqueue_one_by_one(store::broker& b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        job_spec s;
        s.queue = "enqueue";
        s.payload = make_payload(i, payload_size);
        auto r = co_await b.submit(std::move(s), now_millis());
        if (!r) co_return r.error();
    }
    co_return n;
}

asio::awaitable<result<std::size_t>> enqueue_bulk(store::broker& b, std::string queue, std::size_t n,
                                                  std::size_t batch) {
    std::size_t done = 0;
    while (done < n) {
        std::size_t k = std::min(batch, n - done);
        std::vector<job_spec> specs(k);
        for (std::size_t i = 0; i < k; ++i) {
            specs[i].queue = queue;
            specs[i].payload = make_payload(done + i, payload_size);
        }
        auto r = co_await b.submit_many(std::move(specs), now_millis());
        if (!r) co_return r.error();
        done += k;
    }
    co_return done;
}

asio::awaitable<std::string> echo(job_context& job) { co_return job.payload(); }

int partitions = 1;  // --partitions

// Jobs of `queue` completed so far: its partitions' `completed` counters, one HGET
// each (the phase's poll costs Redis next to nothing, unlike listing the queues).
std::int64_t completed_count(redis::connection& conn, asio::io_context& io, const std::string& prefix,
                             const std::string& queue) {
    store::keys k{prefix};
    std::vector<redis::command> cmds;
    for (int p = 0; p < partitions; ++p)
        cmds.push_back(redis::command{"HGET", k.meta(store::partition_queue(queue, p, partitions)), "completed"});
    auto r = block_on(io, conn.exec_many(std::move(cmds)));
    if (!r) throw std::runtime_error("reading the completed count: " + r.error().message());
    std::int64_t n = 0;
    for (const auto& x : *r) n += x.is_nil() ? 0 : std::stoll(x.str);
    return n;
}

bool replicated = false;  // --replicated

// A worker on its own thread, as a separate `spool worker` process would be.
struct bench_worker {
    asio::io_context io;
    std::unique_ptr<worker> w;
    std::thread thread;

    bench_worker(worker_options o, const std::string& queue, std::chrono::microseconds spin) {
        w = std::make_unique<worker>(io, std::move(o));
        queue_options qo;
        qo.replicated = replicated;
        qo.partitions = partitions;
        w->handle(queue, handler::async(echo), qo);
        w->start();
        thread = std::thread{[this, spin] { run_polling(io, spin); }};
    }
    void stop() {
        asio::co_spawn(io, w->stop(std::chrono::seconds{5}), [this](std::exception_ptr) { io.stop(); });
        thread.join();
    }
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto idx = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(idx, v.size() - 1)];
}

void cleanup(bench_context& b) {
    for (auto& server : b.servers) {
        std::string cursor = "0";
        do {
            auto r = block_on(
                b.io, server->exec(redis::command{"SCAN", cursor, "MATCH", b.prefix + ":*", "COUNT", 1000}));
            if (!r || !r->is_array() || r->elements.size() != 2) break;
            cursor = r->elements[0].str;
            // One UNLINK per key (in a cluster a page's keys span slots), one round trip per page.
            std::vector<redis::command> dels;
            for (const auto& k : r->elements[1].elements) dels.push_back(redis::command{"UNLINK", k.str});
            if (!dels.empty()) block_on(b.io, server->exec_many(std::move(dels)));
        } while (cursor != "0");
    }
}

// A config binding the bench's process queue to the echo handler, for `spool worker`.
std::string worker_config_file(const std::string& prefix) {
    std::string path = "/tmp/" + prefix + "-worker.yaml";
    std::ofstream f{path};
    f << (replicated ? "durability: replicated\n" : "") << "queues:\n  process:\n    handler: echo\n";
    if (partitions > 1) f << "    partitions: " << partitions << "\n";
    return path;
}

pid_t spawn_worker(bench_context& b, const std::string& config, const bench_options& o,
                   const std::string& id) {
    std::vector<std::string> args{"spool",          "worker",
                                  "--redis",        b.url,
                                  "--config",       config,
                                  "--queues",       "process",
                                  "--concurrency",  std::to_string(o.concurrency),
                                  "--id",           id,
                                  "--busy-poll-us", std::to_string(o.busy_poll_us),
                                  "--log-level",    "warn"};
    pid_t pid = ::fork();
    if (pid == 0) {
        ::setenv("REDIS_KEY_PREFIX", b.prefix.c_str(), 1);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv("/proc/self/exe", argv.data());
        ::_exit(127);
    }
    if (pid < 0) throw std::runtime_error("fork failed");
    return pid;
}

// Profiling one phase alone: with SPOOL_BENCH_PERF_CTL=<ctl>,<ack> (the FIFOs of
// `perf record -D -1 --control fifo:<ctl>,<ack>`), the phase named by
// SPOOL_BENCH_PERF_PHASE (`process` by default, `bulk` or `enqueue`) is bracketed by "enable"
// and "disable", each waiting for perf's acknowledgement.
void perf_control(const char* phase, const char* what) {
    const char* spec = std::getenv("SPOOL_BENCH_PERF_CTL");
    if (!spec) return;
    const char* want = std::getenv("SPOOL_BENCH_PERF_PHASE");
    if (std::string_view{want ? want : "process"} != phase) return;
    std::string s{spec};
    auto comma = s.find(',');
    if (comma == std::string::npos) return;
    std::ofstream{s.substr(0, comma)} << what << std::endl;
    std::string ack;
    std::ifstream{s.substr(comma + 1)} >> ack;
}

}  // namespace

int run_bench(const bench_options& o) {
    bench_context b;
    b.url = o.redis_url;
    producer_spin = std::chrono::microseconds{o.busy_poll_us};
    payload_size = o.payload_bytes;
    auto ropts = redis::parse_url(b.url);
    if (!ropts) {
        std::cerr << "spool bench: invalid --redis URL " << b.url << "\n";
        return 2;
    }
    b.conn = redis::connection::create(b.io.get_executor(), *ropts);
    b.conn->start();
    if (!block_on(b.io, b.conn->wait_connected(std::chrono::seconds{5}))) {
        std::cerr << "spool bench: cannot connect to " << redis::describe(*ropts) << "\n";
        return 3;
    }
    find_servers(b, *ropts);
    replicated = o.replicated;
    store::broker_options bo;
    bo.prefix = b.prefix;
    if (o.replicated) bo.replicated_queues = {"*"};
    partitions = std::max(1, o.partitions);
    if (partitions > 1)
        for (const char* q : {"enqueue", "process", "latency"}) bo.partitions[q] = partitions;
    store::broker broker{*b.conn, bo};
    boost::json::object out;
    auto say = [&](const std::string& line) {
        if (!o.json) std::cerr << line << std::endl;
    };
    try {
        // 1. one by one
        std::size_t n1 = o.jobs;
        perf_control("enqueue", "enable");
        const double enqueue_cpu0 = redis_cpu_seconds(b);
        auto t0 = steady::now();
        must(block_on(b.io, enqueue_one_by_one(broker, n1)), "enqueue");
        perf_control("enqueue", "disable");
        double enqueue_rate = static_cast<double>(n1) / seconds_since(t0);
        out["enqueue_per_s"] = std::round(enqueue_rate);
        out["enqueue_redis_cpu_us_per_job"] =
            std::round((redis_cpu_seconds(b) - enqueue_cpu0) * 1e6 / static_cast<double>(n1) * 10) / 10;
        say("enqueue 1-by-1:   " + std::to_string(static_cast<long>(enqueue_rate)) + " jobs/s");
        cleanup(b);

        // 3. process
        wait_lazyfree(b);
        double mem0 = info_number(b, "memory", "used_memory");
        perf_control("bulk", "enable");
        const double bulk_cpu0 = redis_cpu_seconds(b);
        t0 = steady::now();
        must(block_on(b.io, enqueue_bulk(broker, "process", o.jobs, o.batch)), "bulk enqueue");
        double bulk_rate = static_cast<double>(o.jobs) / seconds_since(t0);
        perf_control("bulk", "disable");
        out["enqueue_batch_per_s"] = std::round(bulk_rate);
        out["enqueue_batch_redis_cpu_us_per_job"] =
            std::round((redis_cpu_seconds(b) - bulk_cpu0) * 1e6 / static_cast<double>(o.jobs) * 10) / 10;
        say("enqueue bulk:     " + std::to_string(static_cast<long>(bulk_rate)) + " jobs/s");

        worker_options wo;
        wo.redis_url = b.url;
        wo.prefix = b.prefix;
        wo.concurrency = o.concurrency;
        wo.id = "bench-" + std::to_string(::getpid());
        auto finish = [&](double secs, double cpu0, double worker_cpu) {
            double cpu1 = redis_cpu_seconds(b);
            double n = static_cast<double>(o.jobs);
            out["process_per_s"] = std::round(n / secs);
            out["redis_cpu_us_per_job"] = std::round((cpu1 - cpu0) * 1e6 / n * 10) / 10;
            if (b.servers.size() > 1) {
                // How the load spread over the cluster's masters.
                boost::json::array shards;
                auto now_cpu = redis_cpu_by_server(b);
                for (std::size_t i = 0; i < now_cpu.size() && i < b.cpu_mark.size(); ++i)
                    shards.push_back(std::round((now_cpu[i] - b.cpu_mark[i]) * 1e6 / n * 10) / 10);
                out["redis_cpu_us_per_job_by_shard"] = std::move(shards);
            }
            out["worker_cpu_us_per_job"] = std::round(worker_cpu * 1e6 / n * 10) / 10;
            // Every job is completed and retained now: what they hold in Redis.
            out["redis_bytes_per_job"] = std::round((info_number(b, "memory", "used_memory") - mem0) / n);
            say("process:          " + std::to_string(static_cast<long>(n / secs)) + " jobs/s");
        };
        if (o.workers == 0) {
            std::atomic<std::size_t> done{0};
            wo.on_completed = [&](const std::string&) { done.fetch_add(1, std::memory_order_relaxed); };
            perf_control("process", "enable");
            double cpu0 = mark_cpu(b);
            t0 = steady::now();
            bench_worker w{wo, "process", producer_spin};
            double wcpu0 = thread_cpu_seconds(w.thread);
            while (done.load() < o.jobs) {
                std::this_thread::sleep_for(
                    std::chrono::microseconds{200});  // polling the counter, not a fixed wait
                if (seconds_since(t0) > 600)
                    throw std::runtime_error("process phase did not finish in 10 minutes");
            }
            double secs = seconds_since(t0);
            double wcpu = thread_cpu_seconds(w.thread) - wcpu0;
            perf_control("process", "disable");
            finish(secs, cpu0, wcpu);
            w.stop();
        } else {
            // K worker processes, started while the queue is paused and let go together.
            must(block_on(b.io, broker.pause("process")), "pause");
            auto config = worker_config_file(b.prefix);
            std::vector<pid_t> pids;
            for (int i = 0; i < o.workers; ++i)
                pids.push_back(spawn_worker(b, config, o,
                                            "bench-" + std::to_string(::getpid()) + "-" + std::to_string(i)));
            struct reap {
                std::vector<pid_t>& pids;
                std::string config;
                ~reap() {
                    for (auto p : pids) ::kill(p, SIGTERM);
                    for (auto p : pids) ::waitpid(p, nullptr, 0);
                    std::remove(config.c_str());
                }
            } reaper{pids, config};
            auto registered = [&] {
                auto r = block_on(b.io, broker.workers());
                return r && r->size() >= static_cast<std::size_t>(o.workers);
            };
            for (int i = 0; i < 2000 && !registered(); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds{5});
            if (!registered()) throw std::runtime_error("worker processes did not start");
            double wcpu0 = 0;
            for (auto p : pids) wcpu0 += process_cpu_seconds(p);
            perf_control("process", "enable");
            double cpu0 = mark_cpu(b);
            t0 = steady::now();
            must(block_on(b.io, broker.resume("process")), "resume");
            // The counter is read sparingly (each read is a round trip the workers'
            // Redis serves): the next look comes after half the time the jobs left
            // take at the faster of the rate since the last look and the whole run's,
            // between 0.5 and 20 ms, so the end is seen within 0.5 ms unless the rate
            // more than doubles, after a few dozen reads instead of thousands.
            std::int64_t last_n = 0;
            double last_t = 0;
            for (;;) {
                const auto n = completed_count(*b.conn, b.io, b.prefix, "process");
                if (n >= static_cast<std::int64_t>(o.jobs)) break;
                const double elapsed = seconds_since(t0);
                if (elapsed > 600) throw std::runtime_error("process phase did not finish in 10 minutes");
                double wait = 0.002;  // before any job is seen
                if (n > 0) {
                    double rate = static_cast<double>(n) / elapsed;
                    if (elapsed > last_t && n > last_n)
                        rate = std::max(rate, static_cast<double>(n - last_n) / (elapsed - last_t));
                    wait = 0.5 * static_cast<double>(static_cast<std::int64_t>(o.jobs) - n) / rate;
                }
                last_n = n;
                last_t = elapsed;
                std::this_thread::sleep_for(std::chrono::duration<double>(std::clamp(wait, 0.0005, 0.02)));
            }
            double secs = seconds_since(t0);
            double wcpu = -wcpu0;
            for (auto p : pids) wcpu += process_cpu_seconds(p);
            perf_control("process", "disable");
            finish(secs, cpu0, wcpu);
        }
        cleanup(b);

        // 4. latency at a fixed rate
        std::mutex mu;
        std::unordered_map<std::string, steady::time_point> finished;
        wo.on_completed = [&](const std::string& id) {
            auto t = steady::now();
            std::lock_guard lock{mu};
            finished.emplace(id, t);
        };
        std::vector<std::pair<std::string, steady::time_point>> started;
        {
            bench_worker w{wo, "latency", std::chrono::microseconds{o.busy_poll_us}};
            block_on(b.io, b.conn->exec(redis::command{"PING"}));
            auto interval =
                std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(1.0 / o.rate));
            auto next = steady::now() + std::chrono::milliseconds{50};  // let the worker block on Redis first
            for (std::size_t i = 0; i < o.latency_jobs; ++i) {
                std::this_thread::sleep_until(next);  // pacing the producer at --rate
                next += interval;
                job_spec s;
                s.queue = "latency";
                s.payload = make_payload(i, payload_size);
                auto t = steady::now();
                auto r = must(block_on(b.io, broker.submit(std::move(s), now_millis())), "submit");
                started.emplace_back(r.id, t);
            }
            auto deadline = steady::now() + std::chrono::seconds{30};
            for (;;) {
                {
                    std::lock_guard lock{mu};
                    if (finished.size() >= o.latency_jobs) break;
                }
                if (steady::now() > deadline)
                    throw std::runtime_error("latency phase: jobs did not complete");
                std::this_thread::sleep_for(std::chrono::milliseconds{1});
            }
            w.stop();
        }
        std::vector<double> ms;
        for (const auto& [id, t] : started)
            ms.push_back(std::chrono::duration<double, std::milli>(finished.at(id) - t).count());
        out["e2e_p50_ms"] = std::round(percentile(ms, 50) * 1000) / 1000;
        out["e2e_p99_ms"] = std::round(percentile(ms, 99) * 1000) / 1000;
        say("e2e latency:      p50 " + std::to_string(percentile(ms, 50)) + " ms, p99 " +
            std::to_string(percentile(ms, 99)) + " ms at " + std::to_string(static_cast<long>(o.rate)) +
            " jobs/s");
        cleanup(b);
    } catch (const std::exception& e) {
        cleanup(b);
        std::cerr << "spool bench: " << e.what() << "\n";
        return 1;
    }
    out["jobs"] = o.jobs;
    out["concurrency"] = o.concurrency;
    out["latency_rate"] = o.rate;
    out["latency_jobs"] = o.latency_jobs;
    out["busy_poll_us"] = o.busy_poll_us;
    out["workers"] = o.workers;
    out["payload_bytes"] = o.payload_bytes;
    out["replicated"] = o.replicated;
    out["partitions"] = partitions;
    if (o.json) std::cout << boost::json::serialize(out) << std::endl;
    b.conn->stop();
    return 0;
}

}  // namespace spool::app
