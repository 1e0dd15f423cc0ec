// src/store/schedules.cpp
// The index (<prefix>:schedules, name -> queue) is a global key and so never in
// a queue script: it is written before a schedule is created (a crash between
// leaves an index entry without a schedule, which listing skips) and removed
// after it is deleted.
#include "store/schedules.hpp"

#include "store/calls.hpp"
#include "store/scripts.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <algorithm>
#include <map>

namespace spool::store {

using redis::command;
using redis::reply;

namespace {

// The field of `state` for schedule `name` ("" when absent).
const std::string& state_of(const std::map<std::string, std::string>& state, const std::string& name,
                            const char* field) {
    static const std::string none;
    auto it = state.find(name + "|" + field);
    return it == state.end() ? none : it->second;
}

std::map<std::string, std::string> pairs(const reply& r) {
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) out[r.elements[i].str] = r.elements[i + 1].str;
    return out;
}

}  // namespace

schedule_store::schedule_store(redis::connection& conn, broker& b)
    : conn_{conn}, broker_{b}, k_{b.options().prefix} {}

asio::awaitable<result<schedule_upsert_result>> schedule_store::upsert(std::string name, std::string queue,
                                                                       std::string definition,
                                                                       std::string timing, millis next,
                                                                       std::optional<bool> paused) {
    auto old = co_await run_cmd(conn_, command{"HGET", index_key(), name});
    if (!old) co_return old.error();
    std::optional<bool> carry_paused = paused;
    if (!old->is_nil() && old->str != queue) {
        // Moving to another queue: its state does not follow, but its paused flag does.
        if (!carry_paused) {
            auto p = co_await run_cmd(conn_, command{"HGET", state_key(old->str), name + "|paused"});
            if (!p) co_return p.error();
            carry_paused = p->str == "1";
        }
        std::vector<std::string> keys{defs_key(old->str), next_key(old->str), state_key(old->str)};
        std::vector<std::string> args{name};
        auto gone = co_await run_script(conn_, scripts::schedule_delete(), std::move(keys), std::move(args));
        if (!gone) co_return gone.error();
    }
    if (old->is_nil() || old->str != queue) {
        auto set = co_await run_cmd(conn_, command{"HSET", index_key(), name, queue});
        if (!set) co_return set.error();
    }
    // The queue is listed (and its tag known) from the first schedule on.
    if (auto t = co_await broker_.queue_tag(queue); !t) co_return t.error();
    if (auto s = co_await run_cmd(conn_, command{"SADD", k_.queues(), queue}); !s) co_return s.error();
    std::vector<std::string> keys{defs_key(queue), next_key(queue), state_key(queue)};
    std::vector<std::string> args{name, std::move(definition), std::move(timing), std::to_string(next),
                                  carry_paused ? (*carry_paused ? "1" : "0") : ""};
    auto r = co_await run_script(conn_, scripts::schedule_upsert(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    if (r->elements.size() < 3) co_return errc::bad_reply;
    schedule_upsert_result out;
    out.created = r->elements[0].as_integer().value_or(0) == 1;
    out.next = r->elements[1].as_integer().value_or(0);
    co_return out;
}

asio::awaitable<result<std::vector<schedule_row>>> schedule_store::load_queue(
    std::string queue, std::vector<std::string> names) {
    std::vector<command> cmds;
    cmds.push_back(command{"HGETALL", defs_key(queue)});
    cmds.push_back(command{"ZRANGE", next_key(queue), 0, -1, "WITHSCORES"});
    cmds.push_back(command{"HGETALL", state_key(queue)});
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    if (r->size() != 3) co_return errc::bad_reply;
    for (const auto& e : *r)
        if (e.is_error()) co_return errc::redis_error;
    auto defs = pairs((*r)[0]);
    auto next = pairs((*r)[1]);
    auto state = pairs((*r)[2]);
    std::vector<schedule_row> out;
    for (auto& name : names) {
        auto d = defs.find(name);
        if (d == defs.end()) continue;  // an index entry without a schedule (see the file comment)
        schedule_row row;
        row.name = name;
        row.queue = queue;
        row.definition = d->second;
        if (auto n = next.find(name); n != next.end()) row.next = to_ll(n->second);
        row.paused = state_of(state, name, "paused") == "1";
        row.version = to_ll(state_of(state, name, "ver"));
        row.last_job = state_of(state, name, "last_job");
        row.last_run_at = to_ll(state_of(state, name, "last_run_at"));
        row.last_tick = to_ll(state_of(state, name, "last_tick"));
        row.last_outcome = state_of(state, name, "last_outcome");
        row.runs = to_ll(state_of(state, name, "runs"));
        row.skipped = to_ll(state_of(state, name, "skipped"));
        out.push_back(std::move(row));
    }
    co_return out;
}

asio::awaitable<result<std::vector<schedule_row>>> schedule_store::load_all() {
    auto idx = co_await run_cmd(conn_, command{"HGETALL", index_key()});
    if (!idx) co_return idx.error();
    std::map<std::string, std::vector<std::string>> by_queue;
    for (auto& [name, queue] : pairs(*idx)) by_queue[queue].push_back(name);
    std::vector<schedule_row> out;
    for (auto& [queue, names] : by_queue) {
        auto rows = co_await load_queue(queue, std::move(names));
        if (!rows) co_return rows.error();
        for (auto& row : *rows) out.push_back(std::move(row));
    }
    co_return out;
}

asio::awaitable<result<std::optional<schedule_row>>> schedule_store::load(std::string name) {
    auto q = co_await run_cmd(conn_, command{"HGET", index_key(), name});
    if (!q) co_return q.error();
    if (q->is_nil()) co_return std::optional<schedule_row>{};
    std::vector<std::string> names{name};
    auto rows = co_await load_queue(q->str, std::move(names));
    if (!rows) co_return rows.error();
    if (rows->empty()) co_return std::optional<schedule_row>{};
    co_return std::optional<schedule_row>{std::move(rows->front())};
}

asio::awaitable<result<bool>> schedule_store::remove(std::string name) {
    auto q = co_await run_cmd(conn_, command{"HGET", index_key(), name});
    if (!q) co_return result<bool>{boost::system::in_place_error, q.error()};
    if (q->is_nil()) co_return false;
    std::vector<std::string> keys{defs_key(q->str), next_key(q->str), state_key(q->str)};
    std::vector<std::string> args{name};
    auto r = co_await run_script(conn_, scripts::schedule_delete(), std::move(keys), std::move(args));
    if (!r) co_return result<bool>{boost::system::in_place_error, r.error()};
    auto un = co_await run_cmd(conn_, command{"HDEL", index_key(), name});
    if (!un) co_return result<bool>{boost::system::in_place_error, un.error()};
    co_return r->as_integer().value_or(0) == 1;
}

asio::awaitable<result<bool>> schedule_store::set_paused(std::string name, bool paused,
                                                         millis next_on_resume) {
    auto q = co_await run_cmd(conn_, command{"HGET", index_key(), name});
    if (!q) co_return result<bool>{boost::system::in_place_error, q.error()};
    if (q->is_nil()) co_return false;
    std::vector<std::string> keys{defs_key(q->str), next_key(q->str), state_key(q->str)};
    std::vector<std::string> args{name, paused ? "1" : "0", std::to_string(next_on_resume)};
    auto r = co_await run_script(conn_, scripts::schedule_pause(), std::move(keys), std::move(args));
    if (!r) co_return result<bool>{boost::system::in_place_error, r.error()};
    co_return r->as_integer().value_or(0) == 1;
}

// `durability: replicated` (docs/operations.md) covers the jobs schedules make as
// it covers submits: WAIT goes in the same write, right after the script (so in
// a cluster it reaches the script's node). A job the replicas did not confirm
// in time exists on the master; the caller gets not_replicated and the tick is
// not repeated (its next fire time already moved).
asio::awaitable<result<reply>> schedule_store::fire_script(std::vector<std::string> keys,
                                                           std::vector<std::string> args, std::string queue) {
    const auto& o = broker_.options();
    const bool replicated = o.replicated_queues.count(queue) > 0 ||
                            (o.replicated_queues.count("*") > 0 && o.async_queues.count(queue) == 0);
    if (!replicated)
        co_return co_await run_script(conn_, scripts::schedule_fire(o.compact_records), std::move(keys), std::move(args));
    const int replicas = std::max(1, o.replicas);
    const auto& s = scripts::schedule_fire(o.compact_records);
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::vector<command> cmds;
        if (attempt == 1) cmds.emplace_back("SCRIPT", "LOAD", s.source());  // after NOSCRIPT
        cmds.push_back(s.evalsha_command(keys, args));
        cmds.push_back(command{"WAIT", replicas, o.replica_timeout.count()});
        auto rs = co_await conn_.exec_many(std::move(cmds));
        if (!rs) co_return rs.error();
        if (rs->size() < 2) co_return errc::bad_reply;
        auto& script_reply = (*rs)[rs->size() - 2];
        if (script_reply.is_error() && script_reply.str.rfind("NOSCRIPT", 0) == 0 && attempt == 0) continue;
        if (script_reply.is_error()) {
            log::get("store")->error("schedule script error: {}", script_reply.str);
            co_return errc::redis_error;
        }
        // Only a job made needs the replicas' word (a stale or paused answer wrote nothing).
        const bool made = !script_reply.elements.empty() && script_reply.elements[0].str == "fired";
        const auto& wait = rs->back();
        if (made && (!wait.is_integer() || wait.integer < replicas)) {
            log::get("store")->warn("a scheduled job was confirmed by {} of {} replicas within {} ms",
                                    wait.integer, replicas, o.replica_timeout.count());
            co_return errc::not_replicated;
        }
        co_return std::move(script_reply);
    }
    co_return errc::redis_error;
}

asio::awaitable<result<fire_outcome>> schedule_store::fire(fire_request req, millis now) {
    const auto& q = req.queue;
    auto tag = co_await broker_.queue_tag(q);
    if (!tag) co_return tag.error();
    // A queue without a tag (all 65,535 taken) is beyond what schedules support:
    // such ids would need the global ids index, which no queue script may write.
    if (*tag == 0) co_return errc::invalid_argument;
    std::string id = make_job_id(now, *tag);
    auto& j = req.job;
    j.priority = std::clamp(j.priority, min_priority, max_priority);
    std::vector<std::string> keys{
        defs_key(q),  next_key(q),   state_key(q),
        k_.queued(q), broker_.jobs_index(q), k_.marker(q),
        k_.meta(q),   k_.job(q, id), k_.job(q, req.expected_last_job.empty() ? "-" : req.expected_last_job)};
    std::vector<std::string> args{std::to_string(now),
                                  k_.updates_channel(),
                                  std::to_string(broker_.options().max_events),
                                  q,
                                  req.name,
                                  req.trigger ? "trigger" : "tick",
                                  std::to_string(req.version),
                                  std::to_string(req.expected_next),
                                  std::to_string(req.new_next),
                                  std::to_string(req.tick),
                                  req.expected_last_job,
                                  req.overlap_skip ? "skip" : "allow",
                                  id,
                                  std::to_string(j.priority),
                                  std::to_string(j.max_retries),
                                  std::to_string(j.timeout.count()),
                                  std::to_string(j.ttl.count()),
                                  j.tenant,
                                  j.payload,
                                  std::to_string(queued_score(j.priority, now))};
    auto r = co_await fire_script(std::move(keys), std::move(args), q);
    if (!r) co_return r.error();
    if (r->elements.empty()) co_return errc::bad_reply;
    const auto& what = r->elements[0].str;
    fire_outcome out;
    if (what == "fired")
        out.status = fire_status::fired;
    else if (what == "skipped")
        out.status = fire_status::skipped;
    else if (what == "stale")
        out.status = fire_status::stale;
    else if (what == "changed")
        out.status = fire_status::changed;
    else if (what == "paused")
        out.status = fire_status::paused;
    else
        out.status = fire_status::missing;
    if (r->elements.size() > 1) {
        if (out.status == fire_status::stale)
            out.next = to_ll(r->elements[1].str);
        else
            out.job_id = r->elements[1].str;
    }
    co_return out;
}

asio::awaitable<void> schedule_store::announce(std::string name) {
    // Best effort: schedulers also re-read every schedule periodically.
    co_await conn_.exec(command{"PUBLISH", changes_channel(), std::move(name)});
}

}  // namespace spool::store
