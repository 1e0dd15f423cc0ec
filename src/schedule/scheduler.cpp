// src/schedule/scheduler.cpp
#include "schedule/scheduler.hpp"

#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <deque>
#include <limits>
#include <set>

namespace spool::schedule {

namespace {

std::shared_ptr<spdlog::logger> logger() { return log::get("scheduler"); }

// Catch-up walks at most this many missed ticks to find the newest
// catch_up_limit of them; beyond that the schedule restarts after now.
constexpr int max_backlog_walk = 1'000'000;

}  // namespace

job_spec job_of(const definition& d) {
    job_spec j;
    j.queue = d.queue;
    j.payload = d.payload;
    j.priority = d.priority;
    j.max_retries = d.max_retries;
    j.timeout = d.timeout;
    j.ttl = d.ttl;
    j.tenant = d.tenant;
    return j;
}

definition_result<definition> definition_of(const store::schedule_row& row) {
    boost::system::error_code ec;
    auto v = boost::json::parse(row.definition, ec);
    if (ec) return definition_error{"definition", "stored definition is not JSON: " + ec.message()};
    definition_defaults defs;
    defs.queue = row.queue;
    defs.max_payload_bytes = std::numeric_limits<std::size_t>::max();
    return parse_definition(v, defs, row.name);
}

asio::awaitable<result<bool>> remove(store::schedule_store& store, std::string name) {
    auto r = co_await store.remove(name);
    if (r && *r) co_await store.announce(name);
    co_return r;
}

asio::awaitable<result<store::schedule_upsert_result>> upsert(store::schedule_store& store, definition d,
                                                              millis now) {
    auto next = d.next_after(now).value_or(0);
    auto r = co_await store.upsert(d.name, d.queue, to_json(d), d.timing(), next, d.paused);
    if (r) co_await store.announce(d.name);
    co_return r;
}

asio::awaitable<void> upsert_all(store::schedule_store& store, std::vector<std::string> definitions) {
    auto log = logger();
    asio::steady_timer pause{co_await asio::this_coro::executor};
    std::set<std::string> names;  // declared in this config, valid or not
    for (const auto& text : definitions) {
        boost::system::error_code ec;
        auto body = boost::json::parse(text, ec);
        // A definition that does not parse still keeps its name's stored schedule.
        if (!ec && body.is_object())
            if (const auto* n = body.as_object().if_contains("name"); n && n->is_string())
                names.insert(std::string{n->as_string()});
        auto d = ec ? definition_result<definition>{definition_error{"definition", ec.message()}}
                    : parse_definition(body, definition_defaults{});
        if (!d) {
            log->error("schedule from the config: {}", d.error().message);
            continue;
        }
        d->from_config = true;
        for (int attempt = 0;; ++attempt) {
            auto r = co_await upsert(store, *d, system_clock::instance().now());
            if (r) {
                log->info("schedule {} from the config: {}", d->name, r->created ? "created" : "updated");
                break;
            }
            if (attempt % 20 == 0)
                log->warn("schedule {} from the config: {}; retrying", d->name, r.error().message());
            pause.expires_after(std::chrono::milliseconds{500});
            auto [wait_ec] = co_await pause.async_wait(use_tuple);
            if (wait_ec) co_return;  // shutting down
        }
    }
    // Schedules an earlier config declared and this one does not: removed (ones
    // made or changed over the API are the API's and stay).
    for (int attempt = 0;; ++attempt) {
        auto r = co_await prune_config_schedules(store, names);
        if (r) {
            for (const auto& name : *r) log->info("schedule {}: no longer in the config, removed", name);
            break;
        }
        if (attempt % 20 == 0) log->warn("removing schedules no longer in the config: {}; retrying", r.error().message());
        pause.expires_after(std::chrono::milliseconds{500});
        auto [wait_ec] = co_await pause.async_wait(use_tuple);
        if (wait_ec) co_return;
    }
}

asio::awaitable<result<std::vector<std::string>>> prune_config_schedules(store::schedule_store& store,
                                                                        std::set<std::string> keep) {
    auto rows = co_await store.load_all();
    if (!rows) co_return rows.error();
    std::vector<std::string> removed;
    for (const auto& row : *rows) {
        auto d = definition_of(row);
        if (!d || !d->from_config || keep.contains(row.name)) continue;
        auto r = co_await remove(store, row.name);
        if (!r) co_return r.error();
        if (*r) removed.push_back(row.name);
    }
    co_return removed;
}

asio::awaitable<result<std::optional<std::string>>> trigger(store::schedule_store& store, std::string name,
                                                            millis now) {
    // A concurrent change (a tick's job, an upsert) makes the script answer
    // `changed`: read again and retry.
    for (int attempt = 0; attempt < 5; ++attempt) {
        auto row = co_await store.load(name);
        if (!row) co_return row.error();
        if (!*row) co_return std::optional<std::string>{};
        auto def = definition_of(**row);
        if (!def) co_return errc::invalid_state;
        store::fire_request req;
        req.name = name;
        req.queue = (*row)->queue;
        req.trigger = true;
        req.version = (*row)->version;
        req.tick = now;
        req.job = job_of(*def);
        auto out = co_await store.fire(std::move(req), now);
        if (!out) co_return out.error();
        if (out->status == store::fire_status::fired) co_return std::optional<std::string>{out->job_id};
        if (out->status == store::fire_status::missing) co_return std::optional<std::string>{};
    }
    co_return errc::timeout;
}

asio::awaitable<result<bool>> set_paused(store::schedule_store& store, std::string name, bool paused,
                                         millis now) {
    millis next = 0;
    if (!paused) {
        auto row = co_await store.load(name);
        if (!row) co_return result<bool>{boost::system::in_place_error, row.error()};
        if (!*row) co_return false;
        auto def = definition_of(**row);
        if (!def) co_return result<bool>{boost::system::in_place_error, make_error_code(errc::invalid_state)};
        next = def->next_after(now).value_or(0);
    }
    auto r = co_await store.set_paused(name, paused, next);
    if (r && *r) co_await store.announce(name);
    co_return r;
}

// ------------------------------------------------------------------ the loop

scheduler::scheduler(asio::any_io_executor ex, store::schedule_store& store,
                     std::shared_ptr<redis::subscriber> sub, const clock& clk, scheduler_options opts)
    : store_{store}, sub_{std::move(sub)}, clk_{clk}, opts_{opts}, wake_{ex} {}

void scheduler::spawn(task_group& group) {
    group.spawn(run(), "scheduler");
    if (sub_) group.spawn(listen(), "scheduler_listen");
}

void scheduler::poke() {
    dirty_ = true;
    poked_ = true;
    wake_.cancel();
}

asio::awaitable<void> scheduler::listen() {
    sub_->subscribe({store_.changes_channel()});
    for (;;) {
        auto m = co_await sub_->receive();
        if (!m) co_return;  // the subscriber stopped
        poke();
    }
}

asio::awaitable<void> scheduler::reload() {
    auto rows = co_await store_.load_all();
    if (!rows) {
        failing_ = true;
        if (clk_.now() - last_warn_ > 10000) {
            last_warn_ = clk_.now();
            logger()->warn("reading schedules: {}", rows.error().message());
        }
        co_return;
    }
    // Keep the catch-up marks of schedules that did not change.
    std::vector<entry> fresh;
    fresh.reserve(rows->size());
    for (auto& row : *rows) {
        auto def = definition_of(row);
        if (!def) {
            // Once per definition version, not at every refresh.
            if (warned_.insert(row.name + "|" + std::to_string(row.version)).second)
                logger()->warn("schedule {}: stored definition unusable, skipped: {}", row.name,
                               def.error().message);
            continue;
        }
        entry e{std::move(row), std::move(*def), 0};
        for (const auto& old : entries_)
            if (old.row.name == e.row.name && old.row.version == e.row.version)
                e.checked_from = old.checked_from;
        fresh.push_back(std::move(e));
    }
    entries_ = std::move(fresh);
    dirty_ = false;
}

asio::awaitable<void> scheduler::fire_due(entry& e) {
    for (int guard = 0; guard < 10000; ++guard) {
        const millis now = clk_.now();
        if (e.row.paused || e.row.next <= 0 || e.row.next > now) co_return;
        const millis tick = e.row.next;
        millis fired_tick = tick;
        millis new_next = 0;
        if (e.def.catch_up == catch_up_policy::none) {
            // One job now for however many ticks were missed; the next one after now.
            new_next = e.def.next_after(now).value_or(0);
        } else {
            if (e.checked_from == 0 || tick < e.checked_from) {
                // Bound the backlog: only the newest catch_up_limit missed ticks run.
                std::deque<millis> newest;
                std::optional<millis> t = tick;
                int walked = 0;
                while (t && *t <= now && walked < max_backlog_walk) {
                    newest.push_back(*t);
                    if (newest.size() > static_cast<std::size_t>(e.def.catch_up_limit)) newest.pop_front();
                    t = e.def.next_after(*t);
                    ++walked;
                }
                if (walked >= max_backlog_walk) {
                    logger()->warn("schedule {}: over {} missed ticks; restarting after now", e.row.name,
                                   walked);
                    fired_tick = tick;
                    new_next = e.def.next_after(now).value_or(0);
                } else {
                    if (newest.front() != tick)
                        logger()->info(
                            "schedule {}: catch_up all runs the newest {} missed ticks, skips older ones",
                            e.row.name, newest.size());
                    fired_tick = newest.front();
                }
                e.checked_from = fired_tick;
            }
            if (new_next == 0) new_next = e.def.next_after(fired_tick).value_or(0);
        }
        store::fire_request req;
        req.name = e.row.name;
        req.queue = e.row.queue;
        req.version = e.row.version;
        req.expected_next = tick;
        req.new_next = new_next;
        req.tick = fired_tick;
        req.overlap_skip = e.def.overlap == overlap_policy::skip;
        req.expected_last_job = e.row.last_job;
        req.job = job_of(e.def);
        auto out = co_await store_.fire(std::move(req), now);
        if (!out) {
            failing_ = true;
            if (now - last_warn_ > 10000) {
                last_warn_ = now;
                logger()->warn("schedule {}: {}", e.row.name, out.error().message());
            }
            co_return;
        }
        switch (out->status) {
            case store::fire_status::fired:
                logger()->debug("schedule {}: tick {} made job {} ({} ms after the tick)", e.row.name,
                                fired_tick, out->job_id, now - fired_tick);
                e.row.next = new_next;
                e.row.last_job = out->job_id;
                break;
            case store::fire_status::skipped:
                logger()->debug("schedule {}: tick {} skipped, job {} still live", e.row.name, fired_tick,
                                out->job_id);
                e.row.next = new_next;
                break;
            case store::fire_status::stale:
                // Another replica fired it (or the schedule was resumed): take the stored time.
                e.row.next = out->next;
                break;
            case store::fire_status::paused:
                e.row.paused = true;
                co_return;
            case store::fire_status::changed:
            case store::fire_status::missing:
                dirty_ = true;
                co_return;
        }
    }
}

asio::awaitable<void> scheduler::run() {
    auto next_refresh = std::chrono::steady_clock::now();
    for (;;) {
        failing_ = false;
        if (dirty_ || std::chrono::steady_clock::now() >= next_refresh) {
            co_await reload();
            next_refresh = std::chrono::steady_clock::now() + opts_.refresh;
        }
        for (auto& e : entries_) {
            if (dirty_) break;
            co_await fire_due(e);
        }
        // Sleep until the earliest tick, the next refresh, or a poke.
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_refresh -
                                                                          std::chrono::steady_clock::now());
        const millis now = clk_.now();
        for (const auto& e : entries_)
            if (!e.row.paused && e.row.next > 0)
                wait = std::min(wait, std::chrono::milliseconds{e.row.next - now});
        if (failing_) wait = std::max(wait, std::chrono::milliseconds{200});  // Redis trouble: do not spin
        if (dirty_ && !failing_) wait = std::chrono::milliseconds{0};
        wait = std::max(wait, std::chrono::milliseconds{0});
        poked_ = false;
        wake_.expires_after(wait);
        auto [ec] = co_await wake_.async_wait(use_tuple);
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) co_return;  // shutting down
        if (ec && !poked_) co_return;
    }
}

}  // namespace spool::schedule
