// src/worker/worker.cpp
// The worker runtime. Loops, all on the worker's io_context:
//   claimer (one per queue   claim a batch when slots are free; when nothing is
//    partition)              ready, block on Redis (BZPOPMIN on the partition's
//                            marker, own connection) until a submit wakes it.
//                            Free slots go to the claimers that wait for them
//                            in equal shares, woken in turn, so no partition or
//                            queue starves while another has a backlog
//   run_job (one per job)    validate, run the handler, report the outcome
//   flusher (one per queue)  batches completions into one script call
//   ticker                   timeouts, hard stops, lease renewal, heartbeat,
//                            reclaiming expired leases of dead workers
//   cancel_listener          cancel requests published for running jobs
// Stop order: stop claiming, wait for running jobs (grace), cancel the rest and
// hand them back, then stop the ticker and unregister.
#include <spool/worker.hpp>

#include "redis/connection.hpp"
#include "redis/subscriber.hpp"
#include "store/broker.hpp"
#include "store/codec.hpp"
#include "store/partitions.hpp"
#include "util/asio.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/task_group.hpp"
#include "worker/backoff.hpp"

#include <spool/error.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/thread_pool.hpp>

#include <unistd.h>

#include <functional>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

namespace spool {

namespace {

constexpr auto forever = std::chrono::steady_clock::time_point::max();

struct outcome {
    enum class kind { ok, failed, invalid } what = kind::ok;
    std::string value;  // result JSON or error message
};

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    return buf;
}

std::int64_t ram_bytes() {
    long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? static_cast<std::int64_t>(pages) * size : 0;
}

}  // namespace

struct worker::impl {
    struct queue_state;

    struct running_job {
        store::claimed_job job;
        queue_state* q = nullptr;
        std::shared_ptr<job_control> control = std::make_shared<job_control>();
        millis deadline = 0;   // wall-clock timeout
        millis cancel_at = 0;  // when a cancellation was delivered
        bool hard_stopped = false;
        bool lost = false;
        asio::cancellation_signal hard_stop;
        std::unique_ptr<asio::steady_timer> cancel_waiter;
        // Progress is coalesced: at most one write in flight, the latest value wins.
        bool progress_pending = false, progress_writing = false;
        int progress = 0;
        std::string progress_message;
        std::unique_ptr<asio::steady_timer> progress_settled;  // cancelled when the writes stop
    };

    struct pending_completion {
        explicit pending_completion(asio::any_io_executor ex) : done{ex, forever} {}
        store::completion c;
        asio::steady_timer done;
        bool finished = false;
        result<void> outcome;
    };

    // The jobs of one logical queue over all its partitions (its concurrency limit).
    struct group_state {
        int running = 0;
        int reserved = 0;   // slots held by claims on their way
        int reporting = 0;  // jobs whose handler returned and whose outcome is on its way
    };

    // One physical queue: a partition of a logical queue (partition 0 is the queue itself).
    struct queue_state {
        queue_state(std::string n, handler hd, queue_options o, group_state* g, asio::any_io_executor ex)
            : name{std::move(n)}, logical{store::logical_queue(name)}, h{std::move(hd)}, opts{o}, group{g},
              slot_free{ex, forever} {}
        std::string name;
        std::string logical;
        handler h;
        queue_options opts;
        group_state* group;
        std::shared_ptr<redis::connection> blocking;
        asio::steady_timer slot_free;
        std::vector<std::shared_ptr<pending_completion>> pending;
        bool flushing = false;
    };

    impl(asio::io_context& io, worker_options o) : io_{io}, opts_{std::move(o)}, tasks_{io.get_executor()}, idle_{io, forever} {
        if (opts_.id.empty()) opts_.id = host_name() + "-" + std::to_string(::getpid());
        if (opts_.concurrency < 1) opts_.concurrency = 1;
        const auto third = static_cast<std::size_t>((opts_.concurrency + 2) / 3);
        claim_cap_ = std::max<std::size_t>(1, std::min(third, opts_.max_claim_batch));
    }

    asio::io_context& io_;
    worker_options opts_;
    std::shared_ptr<spdlog::logger> log_ = log::get("worker");
    std::shared_ptr<redis::connection> conn_;
    std::shared_ptr<redis::subscriber> sub_;
    std::unique_ptr<store::broker> broker_;
    std::unique_ptr<asio::thread_pool> pool_;
    std::map<std::string, std::unique_ptr<queue_state>> queues_;  // by physical name
    std::map<std::string, group_state> groups_;                     // by logical name
    std::optional<redis::connection_options> ropts_;
    int reserved_ = 0;       // slots held by claims on their way (total_running_ excludes them)
    int slot_waiters_ = 0;   // claimers waiting for a free slot
    std::size_t wake_from_ = 0;  // the claimer finish() wakes first (turns rotate)
    std::unordered_map<std::string, std::shared_ptr<running_job>> running_;
    int total_running_ = 0;  // handlers running
    int reporting_ = 0;      // jobs whose handler returned, their outcome on its way
    task_group tasks_;
    bool started_ = false, stopping_ = false;
    asio::steady_timer idle_;  // cancelled whenever running_ becomes empty or the last claim returns
    int claims_in_flight_ = 0;  // claim calls awaiting Redis (their jobs are leased already)
    // The most jobs one claim takes: a third of the concurrency (and at most
    // max_claim_batch), so three batches overlap: one claimed, one running, one
    // being completed. One batch of all the slots would leave Redis idle while the
    // jobs run and the worker idle while Redis stores them (docs/benchmarks.md).
    std::size_t claim_cap_ = 1;
    worker_stats stats_;
    std::mt19937_64 rng_{std::random_device{}()};
    millis started_at_ = now_millis();
    millis last_error_log_ = 0;

    millis now() const { return now_millis(); }

    void warn_throttled(const std::string& what) {
        // One line per second at most while Redis is away.
        if (now() - last_error_log_ < 1000) return;
        last_error_log_ = now();
        log_->warn("{}", what);
    }

    // Slots for handlers: the concurrency less the handlers running and the claims on
    // their way. Outcomes being reported hold none, unless more than the concurrency
    // of them wait (Redis is slower than the handlers): then the excess does.
    int free_slots(const queue_state& q) const {
        int free = opts_.concurrency - total_running_ - reserved_ - excess(reporting_, opts_.concurrency);
        if (q.opts.concurrency > 0)
            free = std::min(free, q.opts.concurrency - q.group->running - q.group->reserved -
                                      excess(q.group->reporting, q.opts.concurrency));
        return free;
    }
    // Outcomes on their way beyond a concurrency `limit`: the slots they hold.
    static int excess(int reporting, int limit) { return std::max(0, reporting - limit); }

    // Adds the claimer of one physical queue (at start, or a partition found later).
    queue_state* add_queue(std::string physical, const handler& h, queue_options qo) {
        auto& group = groups_[std::string{store::logical_queue(physical)}];
        auto ex = io_.get_executor();
        auto& q = queues_[physical];
        q = std::make_unique<queue_state>(std::move(physical), h, qo, &group, ex);
        return q.get();
    }

    void run_claimer(queue_state* q) {
        q->blocking = redis::connection::create(io_.get_executor(), *ropts_);
        q->blocking->start();
        tasks_.spawn(claimer(q), "claimer:" + q->name);
    }

    // Partitions of our queues that Redis lists but we do not claim from (another
    // process's `partitions`, or an earlier one's): claim from them too.
    asio::awaitable<void> adopt_partitions() {
        auto names = co_await broker_->queue_names();
        if (!names) co_return;
        for (auto& n : *names) {
            if (queues_.count(n) || stopping_) continue;
            auto logical = std::string{store::logical_queue(n)};
            auto base = queues_.find(logical);
            if (base == queues_.end()) continue;
            log_->info("queue {}: claiming from partition {} too", logical, n);
            run_claimer(add_queue(n, base->second->h, base->second->opts));
        }
    }

    // Wakes every claimer waiting for a slot, starting one further each time.
    void wake_claimers() {
        if (queues_.empty()) return;
        auto start = wake_from_++ % queues_.size();
        auto it = std::next(queues_.begin(), static_cast<std::ptrdiff_t>(start));
        for (std::size_t i = 0; i < queues_.size(); ++i) {
            it->second->slot_free.cancel();
            if (++it == queues_.end()) it = queues_.begin();
        }
    }

    void start() {
        auto ropts = redis::parse_url(opts_.redis_url);
        if (!ropts) throw std::runtime_error("invalid Redis URL: " + opts_.redis_url);
        ropts->client_name = "spool-worker:" + opts_.id;
        ropts_ = *ropts;
        conn_ = redis::connection::create(io_.get_executor(), *ropts);
        conn_->start();
        store::broker_options bo;
        bo.prefix = opts_.prefix;
        for (auto& [name, q] : queues_)
            if (q->opts.replicated) bo.replicated_queues.insert(q->logical);
        broker_ = std::make_unique<store::broker>(*conn_, bo);
        bool blocking_handlers = false;
        for (auto& [name, q] : queues_)
            blocking_handlers = blocking_handlers || bool(q->h.blocking_fn) || bool(q->h.validate);
        if (blocking_handlers) {
            int n = opts_.threads > 0 ? opts_.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
            pool_ = std::make_unique<asio::thread_pool>(n);
        }
        sub_ = redis::subscriber::create(io_.get_executor(), *ropts);
        sub_->subscribe({broker_->cancel_channel()});
        sub_->start();
        for (auto& [name, q] : queues_) run_claimer(q.get());
        tasks_.spawn(ticker(), "ticker");
        tasks_.spawn(cancel_listener(), "cancel_listener");
        std::string names;
        for (auto& [name, q] : queues_) names += (names.empty() ? "" : ",") + name;
        log_->info("worker {} started: queues={} concurrency={} redis={}", opts_.id, names, opts_.concurrency,
                   redis::describe(*ropts));
    }

    // ------------------------------------------------------------ claiming

    asio::awaitable<void> claimer(queue_state* q) {
        std::chrono::milliseconds retry{50};
        // The head of the queue as the last claim or wake-up saw it: claiming
        // these takes one script call instead of two (broker::claim).
        std::vector<std::string> candidates;
        // What a take on waking saw when it left nothing for a claim to do (it took
        // the queue's head and no scheduled job is due): the wait comes next.
        std::optional<store::claim_batch> seen;
        while (!stopping_) {
            int free = free_slots(*q);
            int sharing = 1;  // claimers splitting these slots
            if (free <= 0) {
                ++slot_waiters_;
                q->slot_free.expires_at(forever);
                co_await q->slot_free.async_wait(use_tuple);
                // Let the other completions of this turn free their slots too: one
                // larger claim instead of several small ones.
                co_await asio::post(io_, asio::use_awaitable);
                sharing = slot_waiters_--;
                free = free_slots(*q);
                if (free <= 0) continue;
            }
            store::claim_request req;
            req.queue = q->name;
            req.worker_id = opts_.id;
            const int share = (free + sharing - 1) / sharing;
            req.max_jobs = std::min<std::size_t>(static_cast<std::size_t>(share), claim_cap_);
            const int held = static_cast<int>(req.max_jobs);
            req.lease = q->opts.lease;
            req.validating = bool(q->h.validate);
            req.candidates = std::move(candidates);
            candidates.clear();
            ++claims_in_flight_;
            reserved_ += held;
            q->group->reserved += held;
            result<store::claim_batch> batch{errc::redis_error};
            if (seen) batch = std::move(*seen);  // (no co_await inside ?: : GCC 12 mishandles it)
            else batch = co_await broker_->claim(req, now());
            seen.reset();
            reserved_ -= held;
            q->group->reserved -= held;
            if (--claims_in_flight_ == 0 && stopping_) idle_.cancel();
            // Slots this claim held but did not fill go back to the others.
            if (!batch || batch->jobs.size() < req.max_jobs) wake_claimers();
            if (!batch) {
                warn_throttled("claim from " + q->name + " failed: " + batch.error().message() + "; retrying");
                if (!co_await sleep_for(retry)) co_return;
                retry = std::min(retry * 2, std::chrono::milliseconds{2000});
                continue;
            }
            retry = std::chrono::milliseconds{50};
            candidates = std::move(batch->next);
            for (auto& j : batch->jobs) start_job(q, std::move(j));
            if (stopping_) continue;
            // More work waits (the claim saw the head of the queue): claim again.
            if (!candidates.empty()) continue;
            // Nothing ready, or this claim emptied the queue: block on Redis until a
            // submit (or resume, or retry) wakes us, or until the next scheduled job
            // is due. A submit that raced this claim left the marker set, so the
            // wait returns at once.
            std::chrono::milliseconds wait{5000};
            if (batch->next_due > 0)
                wait = std::clamp(std::chrono::milliseconds{batch->next_due - now()}, std::chrono::milliseconds{1},
                                  wait);
            // With a slot for every claimer to spare, this one keeps one while it
            // waits and takes a job on waking, in the same round trip (so an idle
            // worker starts a submitted job one round trip sooner). Else it only
            // peeks at the head.
            const int hold = free_slots(*q) >= static_cast<int>(queues_.size()) ? 1 : 0;
            result<store::wake> woke{errc::redis_error};
            if (hold > 0) {
                ++claims_in_flight_;
                reserved_ += hold;
                q->group->reserved += hold;
                woke = co_await broker_->wait_and_take(*q->blocking, req, wait, hold, now());
                reserved_ -= hold;
                q->group->reserved -= hold;
                if (--claims_in_flight_ == 0 && stopping_) idle_.cancel();
                if (!woke || woke->jobs.empty()) wake_claimers();
            } else {
                woke = co_await broker_->wait_for_work(*q->blocking, q->name, wait, req.max_jobs);
            }
            if (woke) {
                candidates = std::move(woke->ready);
                const bool due = woke->next_due > 0 && woke->next_due <= now();
                if ((!woke->jobs.empty() || woke->paused) && candidates.empty() && !due) {
                    seen.emplace();
                    seen->paused = woke->paused;
                    seen->next_due = woke->next_due;
                }
                for (auto& j : woke->jobs) start_job(q, std::move(j));
            }
            if (!woke && !stopping_) {
                warn_throttled("waiting for work on " + q->name + " failed: " + woke.error().message());
                if (!co_await sleep_for(retry)) co_return;
                retry = std::min(retry * 2, std::chrono::milliseconds{2000});
            }
        }
    }

    void start_job(queue_state* q, store::claimed_job j) {
        auto rj = std::make_shared<running_job>();
        rj->q = q;
        // The queue's timeout is a ceiling over what the submitter asked for.
        auto timeout = q->opts.timeout.count() > 0 ? std::min(q->opts.timeout, j.timeout) : j.timeout;
        j.timeout = timeout;
        rj->deadline = now() + std::chrono::milliseconds{timeout}.count();
        rj->job = std::move(j);
        std::weak_ptr<running_job> weak = rj;
        rj->control->on_progress = [this, weak](int percent, std::string message) {
            // From the I/O thread (async handlers) it is queued at once; from the
            // pool it is posted ahead of the handler's return (FIFO), so either
            // way the outcome is reported after the handler's last progress.
            if (io_.get_executor().running_in_this_thread()) {
                if (auto r = weak.lock()) queue_progress(r, percent, std::move(message));
                return;
            }
            asio::post(io_, [this, weak, percent, message = std::move(message)]() mutable {
                if (auto r = weak.lock()) queue_progress(r, percent, std::move(message));
            });
        };
        rj->control->wait_cancelled = [this, weak]() { return wait_cancelled(weak); };
        running_.emplace(rj->job.id, rj);
        ++q->group->running;
        ++total_running_;
        asio::co_spawn(io_, run_job(rj), asio::bind_cancellation_slot(rj->hard_stop.slot(), asio::detached));
    }

    // ------------------------------------------------------------ running

    asio::awaitable<void> run_job(std::shared_ptr<running_job> rj) {
        auto* q = rj->q;
        job_info info;
        info.id = rj->job.id;
        info.queue = q->logical;
        info.payload = std::move(rj->job.payload);
        info.attempt = rj->job.attempt;
        info.max_retries = rj->job.max_retries;
        info.timeout = rj->job.timeout;
        info.created_at = rj->job.created_at;
        for (const auto& p : rj->job.parents) {
            auto r = co_await broker_->get_result(p);
            info.parents.push_back({p, r ? std::move(r->data) : std::string{"null"}});
        }
        job_context ctx{std::move(info), rj->control, io_.get_executor()};
        outcome o;
        if (q->h.validate) {
            o = co_await run_validate(q, ctx);
            if (o.what == outcome::kind::ok && !is_cancelled(*rj)) {
                store::lease_ref lease{rj->job.id, rj->job.token};
                auto r = co_await broker_->mark_running(q->name, std::move(lease), now());
                if (r) {
                    ++rj->job.history;
                    rj->job.pending_start.clear();  // mark_running wrote the start out
                }
                if (!r && r.error() == errc::lease_lost) rj->lost = true;
            }
        }
        if (o.what == outcome::kind::ok && !rj->lost) o = co_await invoke(q, ctx);
        // A hard stop cancelled the handler; reporting must not be cancelled too.
        co_await asio::this_coro::reset_cancellation_state();
        // The last progress event goes in before the outcome: once the job is
        // completed its lease is gone and a late progress write would be dropped.
        while (rj->progress_writing) {
            if (!rj->progress_settled) rj->progress_settled = std::make_unique<asio::steady_timer>(io_, forever);
            co_await rj->progress_settled->async_wait(use_tuple);
        }
        // The handler is done: its slot goes to the next job while the outcome is
        // written (completions are batched: the next take need not wait for them).
        free_slot(*rj);
        co_await report(rj, std::move(o));
        finish(rj);
    }

    static bool is_cancelled(const running_job& rj) {
        return rj.control->reason.load() != cancel_reason::none;
    }

    asio::awaitable<outcome> invoke(queue_state* q, job_context& ctx) {
        outcome o;
        try {
            if (q->h.async_fn) {
                o.value = co_await q->h.async_fn(ctx);
            } else if (q->h.blocking_fn) {
                std::function<std::string()> fn = [&h = q->h, &ctx] { return h.blocking_fn(ctx); };
                o.value = co_await offload(std::move(fn));
            } else {
                o.what = outcome::kind::failed;
                o.value = "no handler bound to queue " + q->name;
                co_return o;
            }
            if (!store::codec::is_json(o.value)) {
                o.what = outcome::kind::failed;
                o.value = "handler returned a result that is not JSON";
            }
        } catch (const invalid_input& e) {
            o = {outcome::kind::invalid, e.what()};
        } catch (const std::exception& e) {
            o = {outcome::kind::failed, e.what()};
        }
        co_return o;
    }

    asio::awaitable<outcome> run_validate(queue_state* q, job_context& ctx) {
        try {
            std::function<std::string()> fn = [&h = q->h, &ctx] {
                h.validate(ctx);
                return std::string{};
            };
            co_await offload(std::move(fn));
            co_return outcome{};
        } catch (const invalid_input& e) {
            co_return outcome{outcome::kind::invalid, e.what()};
        } catch (const std::exception& e) {
            co_return outcome{outcome::kind::invalid, e.what()};
        }
    }

    // Runs `fn` on the thread pool and resumes on the io_context with its value
    // (or rethrows its exception).
    asio::awaitable<std::string> offload(std::function<std::string()> fn) {
        auto init = [this](auto handler, std::function<std::string()> f) {
            asio::post(*pool_, [this, handler = std::move(handler), f = std::move(f)]() mutable {
                std::exception_ptr error;
                std::string value;
                try {
                    value = f();
                } catch (...) {
                    error = std::current_exception();
                }
                asio::post(io_, [handler = std::move(handler), error, value = std::move(value)]() mutable {
                    std::move(handler)(error, std::move(value));
                });
            });
        };
        co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr, std::string)>(
            init, asio::use_awaitable, std::move(fn));
    }

    asio::awaitable<void> wait_cancelled(std::weak_ptr<running_job> weak) {
        auto rj = weak.lock();
        if (!rj || is_cancelled(*rj)) co_return;
        if (!rj->cancel_waiter) rj->cancel_waiter = std::make_unique<asio::steady_timer>(io_, forever);
        co_await rj->cancel_waiter->async_wait(use_tuple);
    }

    void deliver_cancel(running_job& rj, cancel_reason why) {
        auto expected = cancel_reason::none;
        if (!rj.control->reason.compare_exchange_strong(expected, why)) return;
        rj.cancel_at = now();
        if (rj.cancel_waiter) rj.cancel_waiter->cancel();
        log_->info("job {} cancelling ({})", rj.job.id,
                   why == cancel_reason::timeout ? "timeout" : why == cancel_reason::shutdown ? "shutdown" : "cancel");
    }

    // ------------------------------------------------------------ reporting

    asio::awaitable<void> report(std::shared_ptr<running_job> rj, outcome o) {
        auto* q = rj->q;
        const auto& id = rj->job.id;
        store::lease_ref lease{id, rj->job.token};
        auto why = rj->control->reason.load();
        std::chrono::milliseconds delay{50};
        // Retry while Redis is unreachable; give up once the lease is gone (the
        // reaper then hands the job to another worker: at-least-once).
        for (;;) {
            if (rj->lost) {
                ++stats_.lost;
                log_->warn("job {} outcome discarded: lease lost", id);
                co_return;
            }
            boost::system::error_code ec;
            if (why == cancel_reason::shutdown) {
                std::vector<store::lease_ref> leases{lease};
                auto r = co_await broker_->release(q->name, std::move(leases), now());
                if (r) {
                    ++stats_.released;
                    log_->info("job {} handed back (worker stopping)", id);
                    co_return;
                }
                ec = r.error();
            } else if (why == cancel_reason::none && o.what == outcome::kind::ok) {
                store::completion c{id,
                                    rj->job.token,
                                    o.value,
                                    rj->job.ttl,
                                    rj->job.started_at,
                                    rj->job.created_at,
                                    rj->job.unique_key,
                                    rj->job.history,
                                    rj->job.pending_start};
                auto r = co_await complete_batched(q, std::move(c));
                if (r) {
                    ++stats_.completed;
                    if (opts_.on_completed) opts_.on_completed(id);
                    log_->debug("job {} completed", id);
                    co_return;
                }
                if (r.error() == errc::not_replicated) {
                    // Stored on the master; if it fails over before a replica has it,
                    // the lease brings the job back and it runs again.
                    ++stats_.completed;
                    warn_throttled("job " + id + " completed, but no replica confirmed it in time");
                    co_return;
                }
                ec = r.error();
            } else {
                store::failure f;
                f.id = id;
                f.token = rj->job.token;
                f.retryable = o.what != outcome::kind::invalid;
                if (why == cancel_reason::cancelled) {
                    f.error = "cancelled";
                } else if (why == cancel_reason::timeout) {
                    f.error = "timed out after " + std::to_string(rj->job.timeout.count()) + " s";
                } else {
                    f.error = o.value;
                }
                std::uniform_real_distribution<double> unit{0.0, 1.0};
                f.backoff = worker_detail::retry_backoff(q->opts.backoff_base, rj->job.attempt, unit(rng_));
                std::vector<store::failure> fs{f};
                auto r = co_await broker_->fail(q->name, std::move(fs), now());
                if (r) {
                    ++stats_.failed;
                    auto res = r->empty() ? store::fail_outcome::lease_lost : r->front();
                    if (res == store::fail_outcome::lease_lost) {
                        rj->lost = true;
                        continue;
                    }
                    log_->info("job {} attempt {} failed ({}): {}", id, rj->job.attempt,
                               res == store::fail_outcome::retrying ? "will retry" : "final", f.error);
                    co_return;
                }
                ec = r.error();
            }
            if (ec == errc::lease_lost) {
                rj->lost = true;
                continue;
            }
            warn_throttled("reporting job " + id + " failed: " + ec.message() + "; retrying");
            if (now() > rj->job.lease_until) {
                log_->warn("job {}: lease ran out before its outcome could be written; another worker will run it", id);
                co_return;
            }
            co_await sleep_for(delay);
            delay = std::min(delay * 2, std::chrono::milliseconds{1000});
        }
    }

    asio::awaitable<result<void>> complete_batched(queue_state* q, store::completion c) {
        auto p = std::make_shared<pending_completion>(io_.get_executor());
        p->c = std::move(c);
        q->pending.push_back(p);
        if (!q->flushing) {
            q->flushing = true;
            asio::co_spawn(io_, flush(q), asio::detached);
        }
        if (!p->finished) co_await p->done.async_wait(use_tuple);
        co_return p->outcome;
    }

    asio::awaitable<void> flush(queue_state* q) {
        while (!q->pending.empty()) {
            // Gather the completions the handlers finish in this turn into one call.
            co_await asio::post(io_, asio::use_awaitable);
            auto batch = std::move(q->pending);
            q->pending.clear();
            std::vector<store::completion> cs;
            cs.reserve(batch.size());
            for (auto& p : batch) cs.push_back(std::move(p->c));
            auto r = co_await broker_->complete(q->name, std::move(cs), now());
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (!r) batch[i]->outcome = r.error();
                else if (i < r->size()) batch[i]->outcome = (*r)[i];
                else batch[i]->outcome = errc::bad_reply;
                batch[i]->finished = true;
                batch[i]->done.cancel();
            }
        }
        q->flushing = false;
    }

    void queue_progress(const std::shared_ptr<running_job>& rj, int percent, std::string message) {
        rj->progress = percent;
        rj->progress_message = std::move(message);
        rj->progress_pending = true;
        if (rj->progress_writing) return;
        rj->progress_writing = true;
        asio::co_spawn(io_, write_progress(rj), asio::detached);
    }

    asio::awaitable<void> write_progress(std::shared_ptr<running_job> rj) {
        while (rj->progress_pending && !rj->lost) {
            rj->progress_pending = false;
            store::lease_ref lease{rj->job.id, rj->job.token};
            auto r = co_await broker_->progress(rj->q->name, std::move(lease), rj->progress,
                                                rj->progress_message, now());
            if (!r && r.error() != errc::lease_lost) warn_throttled("progress of " + rj->job.id + ": " + r.error().message());
        }
        rj->progress_writing = false;
        if (rj->progress_settled) rj->progress_settled->cancel();
    }

    // The handler returned (run_job, once per job): its slot is free; the job stays
    // in running_ (its lease renewed) until its outcome is written.
    void free_slot(running_job& rj) {
        --rj.q->group->running;
        --total_running_;
        ++rj.q->group->reporting;
        ++reporting_;
        // The process-wide concurrency is shared by every queue: a claimer of any
        // queue may be waiting for this slot, not only this job's own.
        wake_claimers();
    }

    // The outcome is written (or given up): the job is done here.
    void finish(const std::shared_ptr<running_job>& rj) {
        running_.erase(rj->job.id);
        auto& g = *rj->q->group;
        // An excess of outcomes on their way held slots: one of them is free now.
        // (Only then: each wake moves the turn to the next claimer.)
        const bool held = excess(reporting_, opts_.concurrency) > 0 ||
                          (rj->q->opts.concurrency > 0 && excess(g.reporting, rj->q->opts.concurrency) > 0);
        --g.reporting;
        --reporting_;
        if (held) wake_claimers();
        if (running_.empty()) idle_.cancel();
    }

    // ------------------------------------------------------------ background

    asio::awaitable<void> ticker() {
        asio::steady_timer tick{io_};
        millis last_extend = now(), last_heartbeat = 0;
        auto min_lease = std::chrono::milliseconds{default_lease};
        for (auto& [n, q] : queues_) min_lease = std::min(min_lease, q->opts.lease);
        const millis extend_every = std::max<millis>(min_lease.count() / 3, 50);
        for (;;) {
            const millis t = now();
            for (auto& [id, rj] : running_) {
                if (!is_cancelled(*rj) && t >= rj->deadline) deliver_cancel(*rj, cancel_reason::timeout);
                if (is_cancelled(*rj) && !rj->hard_stopped && t - rj->cancel_at >= opts_.cancel_grace.count()) {
                    rj->hard_stopped = true;
                    log_->warn("job {}: handler ignored the cancellation for {} ms; stopping it", id,
                               opts_.cancel_grace.count());
                    rj->hard_stop.emit(asio::cancellation_type::terminal);
                }
            }
            if (t - last_extend >= extend_every) {
                last_extend = t;
                co_await extend_all();
            }
            if (t - last_heartbeat >= opts_.heartbeat.count()) {
                last_heartbeat = t;
                co_await heartbeat();
                co_await adopt_partitions();
                // Workers recover their queues' expired leases themselves, so a
                // worker-only deployment (no `serve`) still re-runs the jobs of
                // dead workers. The script re-checks, so racing `serve` is harmless.
                for (auto& [name, q] : queues_) {
                    auto r = co_await broker_->reclaim_expired(name, now());
                    if (!r) warn_throttled("reclaiming expired leases on " + name + ": " + r.error().message());
                    auto d = co_await broker_->resolve_pending(name, now());
                    if (!d) warn_throttled("delivering parents' outcomes on " + name + ": " + d.error().message());
                }
            }
            tick.expires_after(std::chrono::milliseconds{std::min<millis>(100, extend_every)});
            auto [ec] = co_await tick.async_wait(use_tuple);
            if (ec) co_return;
        }
    }

    asio::awaitable<void> extend_all() {
        for (auto& [name, q] : queues_) {
            std::vector<store::lease_ref> leases;
            for (auto& [id, rj] : running_)
                if (rj->q == q.get() && !rj->lost) leases.push_back({id, rj->job.token});
            if (leases.empty()) continue;
            const millis t = now();
            auto r = co_await broker_->extend_leases(name, leases, q->opts.lease, t);
            if (!r) {
                warn_throttled("lease renewal on " + name + " failed: " + r.error().message());
                continue;
            }
            for (auto& [id, rj] : running_)
                if (rj->q == q.get()) rj->job.lease_until = t + q->opts.lease.count();
            for (const auto& id : r->lost) {
                if (auto it = running_.find(id); it != running_.end()) {
                    it->second->lost = true;
                    deliver_cancel(*it->second, cancel_reason::cancelled);
                }
            }
            for (const auto& id : r->cancelled)
                if (auto it = running_.find(id); it != running_.end()) deliver_cancel(*it->second, cancel_reason::cancelled);
        }
    }

    asio::awaitable<void> heartbeat() {
        store::worker_info w;
        w.id = opts_.id;
        w.host = host_name();
        w.pid = static_cast<int>(::getpid());
        for (auto& [name, group] : groups_) w.queues.push_back(name);
        w.concurrency = opts_.concurrency;
        w.cpu_cores = static_cast<int>(std::thread::hardware_concurrency());
        w.ram_bytes = ram_bytes();
        w.version = opts_.version;
        w.started_at = started_at_;
        w.last_heartbeat = now();
        for (auto& [id, rj] : running_) w.running.push_back(id);
        auto ttl = std::chrono::duration_cast<std::chrono::seconds>(opts_.heartbeat * 3) + std::chrono::seconds{1};
        auto r = co_await broker_->register_worker(std::move(w), ttl);
        if (!r) warn_throttled("heartbeat failed: " + r.error().message());
    }

    asio::awaitable<void> cancel_listener() {
        for (;;) {
            auto m = co_await sub_->receive();
            if (!m) co_return;  // stopped
            if (auto it = running_.find(m->payload); it != running_.end())
                deliver_cancel(*it->second, cancel_reason::cancelled);
        }
    }

    // ------------------------------------------------------------ stop

    asio::awaitable<void> stop(std::chrono::milliseconds grace) {
        if (stopping_ || !started_) co_return;
        stopping_ = true;
        log_->info("worker {} stopping: {} job(s) running, grace {} ms", opts_.id, running_.size(), grace.count());
        for (auto& [name, q] : queues_) {
            q->blocking->stop();
            q->slot_free.cancel();
        }
        // A claim on its way back holds leases already: its jobs must be known
        // (and then finished or handed back) before the stop can decide anything.
        std::function<bool()> claims_back = [this] { return claims_in_flight_ == 0; };
        co_await wait_until(std::move(claims_back), std::chrono::seconds{10});
        co_await wait_idle(grace);
        if (!running_.empty()) {
            log_->info("grace period over: handing back {} job(s)", running_.size());
            for (auto& [id, rj] : running_) deliver_cancel(*rj, cancel_reason::shutdown);
            co_await wait_idle(opts_.cancel_grace + std::chrono::milliseconds{2000});
        }
        auto unreg = co_await broker_->unregister_worker(opts_.id);
        if (!unreg) log_->warn("unregister failed: {}", unreg.error().message());
        tasks_.cancel();
        sub_->stop();
        co_await tasks_.wait(std::chrono::seconds{2});
        conn_->stop();
        if (pool_) pool_->join();
        log_->info("worker {} stopped: completed={} failed={} released={} lost={}", opts_.id, stats_.completed,
                   stats_.failed, stats_.released, stats_.lost);
    }

    asio::awaitable<void> wait_idle(std::chrono::milliseconds limit) {
        std::function<bool()> idle = [this] { return running_.empty(); };
        co_await wait_until(std::move(idle), limit);
    }

    // Waits until `done()` holds or `limit` passed; `idle_` is cancelled whenever
    // the state it looks at may have changed.
    asio::awaitable<void> wait_until(std::function<bool()> done, std::chrono::milliseconds limit) {
        auto until = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < until) {
            idle_.expires_at(until);
            co_await idle_.async_wait(use_tuple);
        }
    }
};

worker::worker(asio::io_context& io, worker_options opts) : impl_{std::make_unique<impl>(io, std::move(opts))} {}
worker::~worker() = default;

void worker::handle(std::string queue, handler h, queue_options qo) {
    for (auto& physical : store::partition_queues(queue, std::clamp(qo.partitions, 1, store::max_partitions)))
        impl_->add_queue(std::move(physical), h, qo);
}

void worker::start() {
    if (impl_->started_) return;
    impl_->started_ = true;
    impl_->start();
}

asio::awaitable<void> worker::stop(std::chrono::milliseconds grace) { return impl_->stop(grace); }

const std::string& worker::id() const noexcept { return impl_->opts_.id; }

worker_stats worker::stats() const noexcept {
    auto s = impl_->stats_;
    s.running = impl_->running_.size();
    return s;
}

}  // namespace spool
