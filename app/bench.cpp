// app/bench.cpp
// Phases, each against its own key prefix (removed afterwards):
//   enqueue      one producer, each submit awaited before the next
//   enqueue_bulk submit_many in batches (one script call per batch)
//   process      N echo jobs queued first, then one worker (concurrency C) drains
//                them; redis-server's CPU time over this phase / N
//   latency      M jobs submitted at R per second while the worker idles between
//                them; submit start -> completion stored, p50/p99
#include "app/bench.hpp"

#include "redis/connection.hpp"
#include "store/broker.hpp"
#include "util/asio.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

#include <spool/event_loop.hpp>
#include <spool/worker.hpp>

#include <boost/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <stdexcept>
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

// The producer's busy-poll budget (bench_options::busy_poll_us).
std::chrono::microseconds producer_spin{0};

// Runs `aw` to completion on `io` (the caller's thread drives it), polling for
// `producer_spin` after each event before blocking.
template <class T>
T block_on(asio::io_context& io, asio::awaitable<T> aw) {
    std::optional<T> out;
    std::exception_ptr error;
    asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T v) {
        if (e) error = e;
        else out.emplace(std::move(v));
    });
    io.restart();
    run_polling(io, producer_spin, [&] { return out || error; });
    if (!out && !error) throw std::runtime_error("bench: the event loop stopped before the operation finished");
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

struct bench_context {
    asio::io_context io;
    std::shared_ptr<redis::connection> conn;
    std::string url;
    std::string prefix = "spoolbench" + std::to_string(::getpid());
};

double redis_cpu_seconds(bench_context& b) {
    auto r = must(block_on(b.io, b.conn->exec(redis::command{"INFO", "cpu"})), "INFO cpu");
    double total = 0;
    for (const char* field : {"used_cpu_sys:", "used_cpu_user:"}) {
        auto pos = r.str.find(field);
        if (pos != std::string::npos) total += std::stod(r.str.substr(pos + std::strlen(field)));
    }
    return total;
}

asio::awaitable<result<std::size_t>> enqueue_one_by_one(store::broker& b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        job_spec s;
        s.queue = "enqueue";
        s.payload = "{\"i\":" + std::to_string(i) + "}";
        auto r = co_await b.submit(std::move(s), now_millis());
        if (!r) co_return r.error();
    }
    co_return n;
}

asio::awaitable<result<std::size_t>> enqueue_bulk(store::broker& b, std::string queue, std::size_t n, std::size_t batch) {
    std::size_t done = 0;
    while (done < n) {
        std::size_t k = std::min(batch, n - done);
        std::vector<job_spec> specs(k);
        for (std::size_t i = 0; i < k; ++i) {
            specs[i].queue = queue;
            specs[i].payload = "{\"i\":" + std::to_string(done + i) + "}";
        }
        auto r = co_await b.submit_many(std::move(specs), now_millis());
        if (!r) co_return r.error();
        done += k;
    }
    co_return done;
}

asio::awaitable<std::string> echo(job_context& job) { co_return job.payload(); }

// A worker on its own thread, as a separate `spool worker` process would be.
struct bench_worker {
    asio::io_context io;
    std::unique_ptr<worker> w;
    std::thread thread;

    bench_worker(worker_options o, const std::string& queue, std::chrono::microseconds spin) {
        w = std::make_unique<worker>(io, std::move(o));
        w->handle(queue, handler::async(echo));
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
    std::string cursor = "0";
    do {
        auto r = block_on(b.io, b.conn->exec(redis::command{"SCAN", cursor, "MATCH", b.prefix + ":*", "COUNT", 1000}));
        if (!r || !r->is_array() || r->elements.size() != 2) return;
        cursor = r->elements[0].str;
        redis::command del{"UNLINK"};
        for (const auto& k : r->elements[1].elements) del.arg(k.str);
        if (del.args().size() > 1) block_on(b.io, b.conn->exec(std::move(del)));
    } while (cursor != "0");
}

}  // namespace

int run_bench(const bench_options& o) {
    bench_context b;
    b.url = o.redis_url;
    producer_spin = std::chrono::microseconds{o.busy_poll_us};
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
    store::broker_options bo;
    bo.prefix = b.prefix;
    store::broker broker{*b.conn, bo};
    boost::json::object out;
    auto say = [&](const std::string& line) {
        if (!o.json) std::cerr << line << std::endl;
    };
    try {
        // 1. one by one
        std::size_t n1 = o.jobs;
        auto t0 = steady::now();
        must(block_on(b.io, enqueue_one_by_one(broker, n1)), "enqueue");
        double enqueue_rate = static_cast<double>(n1) / seconds_since(t0);
        out["enqueue_per_s"] = std::round(enqueue_rate);
        say("enqueue 1-by-1:   " + std::to_string(static_cast<long>(enqueue_rate)) + " jobs/s");
        cleanup(b);

        // 2. bulk (these jobs stay queued for the process phase)
        t0 = steady::now();
        must(block_on(b.io, enqueue_bulk(broker, "process", o.jobs, o.batch)), "bulk enqueue");
        double bulk_rate = static_cast<double>(o.jobs) / seconds_since(t0);
        out["enqueue_batch_per_s"] = std::round(bulk_rate);
        say("enqueue bulk:     " + std::to_string(static_cast<long>(bulk_rate)) + " jobs/s");

        // 3. process
        std::atomic<std::size_t> done{0};
        worker_options wo;
        wo.redis_url = b.url;
        wo.prefix = b.prefix;
        wo.concurrency = o.concurrency;
        wo.id = "bench-" + std::to_string(::getpid());
        wo.on_completed = [&](const std::string&) { done.fetch_add(1, std::memory_order_relaxed); };
        double cpu0 = redis_cpu_seconds(b);
        t0 = steady::now();
        {
            bench_worker w{wo, "process", producer_spin};
            while (done.load() < o.jobs) {
                std::this_thread::sleep_for(std::chrono::microseconds{200});  // polling the counter, not a fixed wait
                if (seconds_since(t0) > 600) throw std::runtime_error("process phase did not finish in 10 minutes");
            }
            double secs = seconds_since(t0);
            double cpu1 = redis_cpu_seconds(b);
            w.stop();
            double process_rate = static_cast<double>(o.jobs) / secs;
            out["process_per_s"] = std::round(process_rate);
            out["redis_cpu_us_per_job"] = std::round((cpu1 - cpu0) * 1e6 / static_cast<double>(o.jobs) * 10) / 10;
            say("process:          " + std::to_string(static_cast<long>(process_rate)) + " jobs/s");
            say("redis cpu:        " + std::to_string((cpu1 - cpu0) * 1e6 / static_cast<double>(o.jobs)) + " us/job");
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
            auto interval = std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(1.0 / o.rate));
            auto next = steady::now() + std::chrono::milliseconds{50};  // let the worker block on Redis first
            for (std::size_t i = 0; i < o.latency_jobs; ++i) {
                std::this_thread::sleep_until(next);  // pacing the producer at --rate
                next += interval;
                job_spec s;
                s.queue = "latency";
                s.payload = "{\"i\":" + std::to_string(i) + "}";
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
                if (steady::now() > deadline) throw std::runtime_error("latency phase: jobs did not complete");
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
            std::to_string(percentile(ms, 99)) + " ms at " + std::to_string(static_cast<long>(o.rate)) + " jobs/s");
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
    if (o.json) std::cout << boost::json::serialize(out) << std::endl;
    b.conn->stop();
    return 0;
}

}  // namespace spool::app
