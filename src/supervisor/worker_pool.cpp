// src/supervisor/worker_pool.cpp
#include "supervisor/worker_pool.hpp"

#include "util/log.hpp"

#include <algorithm>

namespace spool::supervisor {

worker_pool::worker_pool(asio::any_io_executor ex, worker_pool_options opts)
    : ex_{ex}, opts_{std::move(opts)}, tasks_{ex} {}

worker_pool::~worker_pool() {
    stopping_ = true;
    // Each child_process SIGKILLs and reaps its child on destruction.
    for (auto& s : slots_) s->child.reset();
}

spawn_options worker_pool::spawn_options_for(const slot& s) const {
    spawn_options so;
    so.argv = opts_.argv;
    so.env = opts_.env;
    so.env.push_back("SPOOL_WORKER_SLOT=" + std::to_string(s.index));
    return so;
}

void worker_pool::start() {
    if (!slots_.empty()) return;
    for (std::size_t i = 0; i < opts_.workers; ++i) {
        auto s = std::make_unique<slot>(ex_);
        s->index = i;
        tasks_.spawn(run_slot(s.get()), "worker-slot-" + std::to_string(i));
        slots_.push_back(std::move(s));
    }
}

asio::awaitable<void> worker_pool::run_slot(slot* s) {
    auto log = log::get("supervisor");
    auto backoff = opts_.backoff_initial;
    for (bool first = true;; first = false) {
        if (stopping_) co_return;
        if (!first) {
            s->backoff_timer.expires_after(backoff);
            auto [ec] = co_await s->backoff_timer.async_wait(use_tuple);
            if (ec || stopping_) co_return;
            backoff = std::min(backoff * 2, opts_.backoff_max);
            ++s->restarts;
            ++restarts_;
        }
        s->child = std::make_unique<child_process>(ex_);
        if (auto ec = s->child->start(spawn_options_for(*s))) {
            log->error("worker {}: cannot start {}: {}; retrying in {} ms", s->index, opts_.argv.at(0),
                       ec.message(), backoff.count());
            continue;
        }
        int pid = s->child->pid();
        log->info("worker {} started (pid {})", s->index, pid);
        auto started = std::chrono::steady_clock::now();
        auto status = co_await s->child->wait();
        if (!status) co_return;  // cancelled: stop() reaps what is left
        if (stopping_) {
            log->info("worker {} (pid {}) exited ({})", s->index, pid, status->describe());
            co_return;
        }
        if (std::chrono::steady_clock::now() - started >= opts_.healthy_after)
            backoff = opts_.backoff_initial;
        if (status->success())
            log->warn("worker {} (pid {}) exited on its own; restarting in {} ms", s->index, pid,
                      backoff.count());
        else
            log->error("worker {} (pid {}) crashed ({}); restarting in {} ms", s->index, pid,
                       status->describe(), backoff.count());
    }
}

asio::awaitable<void> worker_pool::stop(std::chrono::milliseconds grace) {
    auto log = log::get("supervisor");
    stopping_ = true;
    for (auto& s : slots_) {
        s->backoff_timer.cancel();
        if (s->child) s->child->signal(SIGTERM);
    }
    bool done = co_await tasks_.wait(grace);
    if (!done) {
        log->warn("{} worker(s) still running after {} ms: SIGKILL", running(), grace.count());
        for (auto& s : slots_)
            if (s->child) s->child->signal(SIGKILL);
        done = co_await tasks_.wait(std::chrono::seconds{5});
    }
    if (!done) {
        tasks_.cancel();
        co_await tasks_.wait(std::chrono::seconds{1});
    }
    // Whatever a cancelled slot left behind is killed and reaped here.
    for (auto& s : slots_)
        if (s->child && s->child->running()) co_await s->child->terminate(std::chrono::milliseconds{0});
}

std::vector<int> worker_pool::pids() const {
    std::vector<int> out;
    out.reserve(slots_.size());
    for (const auto& s : slots_) out.push_back(s->child && s->child->running() ? s->child->pid() : -1);
    return out;
}

std::size_t worker_pool::running() const {
    return static_cast<std::size_t>(std::count_if(
        slots_.begin(), slots_.end(), [](const auto& s) { return s->child && s->child->running(); }));
}

}  // namespace spool::supervisor
