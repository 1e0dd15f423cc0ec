// src/store/broker.cpp
// Typed transitions over the Lua scripts in scripts.cpp. Scripts that act on jobs
// found at run time (promote, reclaim, purge, start) are called in two steps: a
// read picks candidate ids, then the script (declaring every key) re-checks each
// candidate atomically, so a race with another process only skips work.
#include "store/broker.hpp"

#include "store/calls.hpp"
#include "store/codec.hpp"
#include "store/job_index.hpp"
#include "store/keys.hpp"
#include "store/partitions.hpp"
#include "store/scripts.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <fmt/format.h>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdlib>
#include <cctype>
#include <charconv>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace spool::store {

using redis::command;
using redis::reply;

namespace {

constexpr std::size_t batch_limit = 500;  // jobs per script call
constexpr std::size_t max_parents = 100;  // depends_on entries per job
constexpr std::size_t max_flow_jobs = 1000;  // jobs per flow

long long int_of(const reply& r) { return r.as_integer().value_or(0); }

bool valid_queue_name(std::string_view q) {
    if (q.empty() || q.size() > 128) return false;
    for (char c : q)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':'))
            return false;
    return true;
}

// The queue name events and answers carry: the logical queue of a partition.
std::string shown(std::string_view physical) { return std::string{logical_queue(physical)}; }

int partitions_for(const broker_options& o, std::string_view queue) {
    auto it = o.partitions.find(queue);
    return it == o.partitions.end() ? 1 : std::clamp(it->second, 1, max_partitions);
}

std::vector<std::string> string_list(const reply& r) {
    std::vector<std::string> out;
    if (!r.is_array()) return out;
    out.reserve(r.elements.size());
    for (const auto& e : r.elements) out.push_back(e.str);
    return out;
}

}  // namespace

// Which queue a job id belongs to never changes, so reads of job records skip the
// ids-index round trip for ids this process has seen. Bounded (oldest out first);
// a deleted job is still detected, because its record is then missing.
class queue_cache {
public:
    std::optional<std::string> find(const std::string& id) {
        std::lock_guard lock{mu_};
        auto it = map_.find(id);
        if (it == map_.end()) return std::nullopt;
        return it->second;
    }
    void put(const std::string& id, const std::string& queue) {
        std::lock_guard lock{mu_};
        if (!map_.emplace(id, queue).second) return;
        order_.push_back(id);
        if (order_.size() > capacity) {
            map_.erase(order_.front());
            order_.pop_front();
        }
    }

private:
    static constexpr std::size_t capacity = 16384;
    std::mutex mu_;
    std::unordered_map<std::string, std::string> map_;
    std::deque<std::string> order_;
};

// Single submits that arrive while one is on its way to Redis wait and then go
// together as one batched script call (the HTTP API under load: many connections,
// one job each). A lone submit goes at once, so its latency is unchanged.
struct pending_submit {
    job_spec spec;
    asio::steady_timer done;
    std::optional<result<submit_result>> outcome;
    explicit pending_submit(asio::any_io_executor ex, job_spec s)
        : spec{std::move(s)}, done{ex, asio::steady_timer::time_point::max()} {}
};

// Queue name <-> the tag its job ids carry (<prefix>:queue_tags); tags never change.
class tag_cache {
public:
    std::optional<std::uint16_t> tag(const std::string& queue) {
        std::lock_guard lock{mu_};
        auto it = by_name_.find(queue);
        if (it == by_name_.end()) return std::nullopt;
        return it->second;
    }
    std::optional<std::string> queue(std::uint16_t tag) {
        std::lock_guard lock{mu_};
        auto it = by_tag_.find(tag);
        if (it == by_tag_.end()) return std::nullopt;
        return it->second;
    }
    void put(const std::string& queue, std::uint16_t tag) {
        std::lock_guard lock{mu_};
        by_name_[queue] = tag;
        if (tag != 0) by_tag_[tag] = queue;
    }

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::uint16_t> by_name_;
    std::unordered_map<std::uint16_t, std::string> by_tag_;
};

struct broker::impl {
    keys k;
    std::shared_ptr<spdlog::logger> log = log::get("store");
    queue_cache queues;
    tag_cache tags;
    std::vector<std::shared_ptr<pending_submit>> waiting;
    bool submitting = false;
    std::uint64_t next_partition = 0;  // round robin for jobs without a unique_key
    // When each queue's registration (queue set, tag) was last written back.
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> asserted;

    explicit impl(std::string prefix) : k{std::move(prefix)} {}

    // True at most once a second per queue: time to write the registration again.
    bool reassert(const std::string& queue) {
        auto now = std::chrono::steady_clock::now();
        auto [it, fresh] = asserted.try_emplace(queue, now);
        if (!fresh && now - it->second < std::chrono::seconds{1}) return false;
        it->second = now;
        return true;
    }
};

// The index new jobs go in, and completed ones: the `jobs` and `done` streams, or the
// `all` and `completed` sets of the classic layout (docs/keys.md, "Job indexes").
std::string broker::jobs_index(const std::string& queue) const {
    return opts_.compact_records ? impl_->k.jobs(queue) : impl_->k.all(queue);
}
std::string broker::done_index(const std::string& queue) const {
    return opts_.compact_records ? impl_->k.done(queue) : impl_->k.completed(queue);
}

bool broker_options::compact_records_by_default() {
    const char* f = std::getenv("SPOOL_RECORD_FORMAT");
    return !(f && std::string_view{f} == "classic");
}

broker::broker(redis::connection& conn, broker_options opts)
    : conn_{conn}, opts_{std::move(opts)}, impl_{std::make_unique<impl>(opts_.prefix)} {
    if (!opts_.clock) opts_.clock = &system_clock::instance();
}

broker::~broker() = default;

std::string broker::cancel_channel() const { return impl_->k.cancel_channel(); }
std::string broker::updates_channel() const { return impl_->k.updates_channel(); }

namespace {

// How many replicas must confirm a write before it counts (0: none asked).
struct replication {
    int replicas = 0;
    std::chrono::milliseconds timeout{0};
};

replication replication_for(const broker_options& o, std::string_view physical) {
    const auto queue = logical_queue(physical);
    const bool wanted = o.replicated_queues.count(queue) > 0 ||
                        (o.replicated_queues.count("*") > 0 && o.async_queues.count(queue) == 0);
    if (!wanted) return {};
    return replication{std::max(1, o.replicas), o.replica_timeout};
}

// WAIT's answer: enough replicas, or errc::not_replicated.
result<void> check_replicated(const reply& r, const replication& rep) {
    if (r.is_error()) {
        log::get("store")->error("WAIT failed: {}", r.str);
        return errc::redis_error;
    }
    if (!r.is_integer() || r.integer < rep.replicas) {
        log::get("store")->warn("a write was confirmed by {} of {} replicas within {} ms", r.integer, rep.replicas,
                                rep.timeout.count());
        return errc::not_replicated;
    }
    return {};
}

// True (and logged) when a reply in [from, to) is an error.
bool any_error(const std::vector<reply>& rs, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to && i < rs.size(); ++i)
        if (rs[i].is_error()) {
            log::get("store")->error("redis error: {}", rs[i].str);
            return true;
        }
    return false;
}

// Sends `pre` and the script in one write (one round trip), and WAIT after it
// when `rep` asks (in a cluster WAIT goes to the script's node: it follows the
// command before it). When Redis does not know the script yet (NOSCRIPT), it is
// loaded and run again; `pre` must therefore be idempotent.
asio::awaitable<result<reply>> run_script_after(redis::connection& conn, std::vector<command> pre,
                                                const redis::script& s, std::vector<std::string> keys,
                                                std::vector<std::string> args, replication rep = {}) {
    const std::size_t tail = rep.replicas > 0 ? 2 : 1;  // the script's reply, and WAIT's
    pre.push_back(s.evalsha_command(keys, args));
    if (rep.replicas > 0) pre.push_back(command{"WAIT", rep.replicas, rep.timeout.count()});
    auto r = co_await conn.exec_many(std::move(pre));
    if (!r) co_return r.error();
    if (r->size() < tail) co_return errc::bad_reply;
    if (any_error(*r, 0, r->size() - tail)) co_return errc::redis_error;
    auto& last = (*r)[r->size() - tail];
    if (last.is_error() && last.str.rfind("NOSCRIPT", 0) == 0) {
        if (rep.replicas == 0) co_return co_await run_script(conn, s, std::move(keys), std::move(args));
        // Load, run and WAIT in one pipeline (SCRIPT LOAD goes to the script's node).
        std::vector<command> again;
        again.emplace_back("SCRIPT", "LOAD", s.source());
        again.push_back(s.evalsha_command(keys, args));
        again.push_back(command{"WAIT", rep.replicas, rep.timeout.count()});
        auto a = co_await conn.exec_many(std::move(again));
        if (!a) co_return a.error();
        if (a->size() != 3) co_return errc::bad_reply;
        if ((*a)[1].is_error()) {
            log::get("store")->error("script error: {}", (*a)[1].str);
            co_return errc::redis_error;
        }
        if (auto ok = check_replicated((*a)[2], rep); !ok) co_return ok.error();
        co_return std::move((*a)[1]);
    }
    if (last.is_error()) {
        log::get("store")->error("script error: {}", last.str);
        co_return errc::redis_error;
    }
    if (rep.replicas > 0)
        if (auto ok = check_replicated(r->back(), rep); !ok) co_return ok.error();
    co_return std::move(last);
}

}  // namespace

// ---------------------------------------------------------------- producer side

asio::awaitable<result<std::uint16_t>> broker::queue_tag(std::string queue) {
    if (auto t = impl_->tags.tag(queue)) co_return *t;
    std::vector<std::string> keys_v{impl_->k.queue_tags()};
    std::vector<std::string> args_v{queue};
    auto r = co_await run_script(conn_, scripts::tag_queue(), std::move(keys_v), std::move(args_v));
    if (!r) co_return r.error();
    auto tag = static_cast<std::uint16_t>(std::clamp<long long>(int_of(*r), 0, 65535));
    impl_->tags.put(queue, tag);
    co_return tag;
}

asio::awaitable<result<submit_result>> broker::submit(job_spec spec, millis now) {
    auto& im = *impl_;
    if (im.submitting) {
        auto ex = co_await asio::this_coro::executor;
        auto p = std::make_shared<pending_submit>(ex, std::move(spec));
        im.waiting.push_back(p);
        while (!p->outcome) co_await p->done.async_wait(asio::as_tuple(asio::use_awaitable));
        co_return std::move(*p->outcome);
    }
    im.submitting = true;
    struct reset {
        impl& im;
        ~reset() {
            im.submitting = false;
            // Only left non-empty when this coroutine is torn down mid-flight.
            for (auto& p : std::exchange(im.waiting, {})) {
                p->outcome = result<submit_result>{errc::shutting_down};
                p->done.cancel();
            }
        }
    } guard{im};
    std::vector<job_spec> one;
    one.push_back(std::move(spec));
    auto r = co_await submit_many(std::move(one), now);
    // Whoever queued up meanwhile goes now, in batches, before this call returns.
    while (!im.waiting.empty()) {
        auto batch = std::exchange(im.waiting, {});
        std::vector<job_spec> specs;
        specs.reserve(batch.size());
        for (auto& p : batch) specs.push_back(std::move(p->spec));
        auto many = co_await submit_many(std::move(specs), opts_.clock->now());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (many) batch[i]->outcome = std::move((*many)[i]);
            else batch[i]->outcome = result<submit_result>{many.error()};
            batch[i]->done.cancel();
        }
    }
    if (!r) co_return r.error();
    co_return std::move(r->front());
}

// A spec fit to submit (normalised: priority clamped, depends_on sorted without
// repeats), or the reason it is not.
boost::system::error_code broker::check(job_spec& s, millis now) const {
    if (!valid_queue_name(s.queue) || s.max_retries < 0 || s.timeout.count() <= 0 || s.ttl.count() <= 0)
        return errc::invalid_argument;
    if (s.payload.size() > opts_.max_payload_bytes) return errc::payload_too_large;
    if (!codec::is_json(s.payload)) return errc::invalid_argument;
    if (!s.depends_on.empty()) {
        std::sort(s.depends_on.begin(), s.depends_on.end());
        s.depends_on.erase(std::unique(s.depends_on.begin(), s.depends_on.end()), s.depends_on.end());
        const bool ok_policy =
            s.on_parent_failure == "fail" || s.on_parent_failure == "cancel" || s.on_parent_failure == "run";
        if (!ok_policy || s.depends_on.size() > max_parents || s.run_at > now ||
            !std::all_of(s.depends_on.begin(), s.depends_on.end(),
                         [](const std::string& id) { return is_valid_job_id(id); }))
            return errc::invalid_argument;
    }
    s.priority = std::clamp(s.priority, min_priority, max_priority);
    return {};
}

// The physical queue a job goes to. A partitioned queue: a unique_key always lands
// in the same partition (its dedupe lives there); other jobs go round robin.
std::string broker::route(const job_spec& s) {
    const int n = partitions_for(opts_, s.queue);
    int p = 0;
    if (n > 1)
        p = s.unique_key.empty() ? static_cast<int>(impl_->next_partition++ % static_cast<std::uint64_t>(n))
                                 : partition_of_key(s.unique_key, n);
    return partition_queue(s.queue, p, n);
}

struct broker::submit_state {
    std::vector<job_spec> specs;
    std::vector<result<submit_result>> out;  // one per spec
    std::vector<std::string> ids;            // the id made for each spec
    boost::system::error_code error;         // the first group's failure
};

namespace {

// Runs the tasks at once on this executor and returns when every one has ended
// (rethrowing the first exception). Each task owns what it uses, so a caller torn
// down meanwhile leaves nothing dangling.
asio::awaitable<void> run_all(std::vector<asio::awaitable<void>> tasks) {
    auto ex = co_await asio::this_coro::executor;
    struct join {
        explicit join(asio::any_io_executor e, std::size_t n) : done{e, asio::steady_timer::time_point::max()}, left{n} {}
        asio::steady_timer done;
        std::size_t left;
        std::exception_ptr error;
    };
    auto j = std::make_shared<join>(ex, tasks.size());
    for (auto& t : tasks)
        asio::co_spawn(ex, std::move(t), [j](std::exception_ptr e) {
            if (e && !j->error) j->error = e;
            if (--j->left == 0) j->done.cancel();
        });
    while (j->left > 0) co_await j->done.async_wait(asio::as_tuple(asio::use_awaitable));
    if (j->error) std::rethrow_exception(j->error);
}

}  // namespace

asio::awaitable<result<std::vector<result<submit_result>>>> broker::submit_many(std::vector<job_spec> specs,
                                                                                millis now) {
    auto state = std::make_shared<submit_state>();
    auto& st = *state;
    st.out.assign(specs.size(), result<submit_result>{errc::invalid_argument});
    st.ids.resize(specs.size());
    // Validate, then group the valid ones by queue (keeping their positions).
    std::map<std::string, std::vector<std::size_t>> by_queue;
    std::vector<std::pair<std::string, std::size_t>> with_parents;  // (queue, position): one by one
    for (std::size_t i = 0; i < specs.size(); ++i) {
        auto& s = specs[i];
        if (auto bad = check(s, now)) {
            st.out[i] = bad;
            continue;
        }
        if (s.depends_on.empty()) by_queue[route(s)].push_back(i);
        else with_parents.emplace_back(route(s), i);
    }
    st.specs = std::move(specs);
    for (auto& [queue, i] : with_parents) {
        co_await submit_child(state, queue, i, now);
        if (st.error) co_return st.error;
    }
    // The queues' (partitions') scripts go out at once: on a cluster each to its
    // own master, in parallel; on one Redis pipelined. The first error wins.
    if (by_queue.empty()) co_return std::move(st.out);
    if (by_queue.size() == 1) {
        auto& [queue, idx] = *by_queue.begin();
        if (auto ec = co_await submit_queue(state, queue, std::move(idx), now)) co_return ec;
        co_return std::move(st.out);
    }
    std::vector<asio::awaitable<void>> groups;
    for (auto& [queue, idx] : by_queue) {
        auto one = [](broker* b, std::shared_ptr<submit_state> st, std::string q, std::vector<std::size_t> ix,
                      millis t) -> asio::awaitable<void> {
            auto ec = co_await b->submit_queue(st, std::move(q), std::move(ix), t);
            if (ec && !st->error) st->error = ec;
        };
        groups.push_back(one(this, state, queue, std::move(idx), now));
    }
    co_await run_all(std::move(groups));
    if (st.error) co_return st.error;
    co_return std::move(st.out);
}

// One queue's (or partition's) share of a submit_many: its scripts in batches.
asio::awaitable<boost::system::error_code> broker::submit_queue(std::shared_ptr<submit_state> state,
                                                                std::string queue, std::vector<std::size_t> idx,
                                                                millis now) {
    const auto& k = impl_->k;
    auto& st = *state;
    // The queue's tag goes into each id, so reads find the job without an
    // index. Without a tag (all 65,535 taken) the ids index says where it is.
    auto tag = co_await queue_tag(queue);
    if (!tag) co_return tag.error();
    const bool indexed = *tag == 0;
    for (auto i : idx) st.ids[i] = make_job_id(now, *tag);
    const std::string now_text = std::to_string(now);
    std::vector<asio::awaitable<void>> plain;  // batches sent without waiting for each other
    for (std::size_t start = 0; start < idx.size(); start += batch_limit) {
        std::size_t end = std::min(idx.size(), start + batch_limit);
        // The batch's job_created events, built here where the strings are at hand
        // (in the script they cost ~1 µs per job); not when a unique_key may make a
        // job a duplicate, which gets no event: the script builds them then.
        bool prebuild = true;
        for (std::size_t j = start; j < end && prebuild; ++j) prebuild = st.specs[idx[j]].unique_key.empty();
        std::string events;
        if (prebuild) {
            const std::string tail = R"(","queue":")" + shown(queue) + R"(","status":")";
            const std::string ts = R"(","ts":)" + now_text + "}";
            events.reserve((end - start) * (80 + tail.size()) + 2);
            events += '[';
            for (std::size_t j = start; j < end; ++j) {
                if (j > start) events += ',';
                events += R"({"type":"job_created","job_id":")";
                events += st.ids[idx[j]];
                events += tail;
                events += codec::new_status(st.specs[idx[j]], now);
                events += ts;
            }
            events += ']';
        }
        // The id index goes first, in the same write: a crash between leaves at
        // worst an index entry without a job (a 404), never a job without an index.
        std::vector<command> pre;
        if (indexed) {
            command index{"HSET", k.ids()};
            for (std::size_t j = start; j < end; ++j) index.arg(st.ids[idx[j]]).arg(queue);
            pre.push_back(std::move(index));
        }
        // Idempotent, in the same write, at most once a second per queue: the queue
        // stays listed and its tag resolvable even when Redis lost them (FLUSHALL,
        // a fresh replica) without costing every submit three more commands.
        if (indexed || impl_->reassert(queue))
            for (auto& c : registration(queue, *tag)) pre.push_back(std::move(c));
        if (prebuild && !conn_.is_cluster()) {
            // Every job will be created: the script's writes as plain commands. The
            // batches go out one after another without waiting for each other (after
            // the loop), so Redis runs one while the next is being built.
            auto one = [](broker* b, std::shared_ptr<submit_state> st, std::string q, std::vector<std::size_t> ix,
                          std::size_t from, std::size_t to, millis t, bool indexed, std::vector<command> pre,
                          std::string ev) -> asio::awaitable<void> {
                auto ec = co_await b->submit_plain(q, *st, ix, from, to, t, indexed, std::move(pre), std::move(ev));
                if (ec && !st->error) st->error = ec;
            };
            plain.push_back(one(this, state, queue, idx, start, end, now, indexed, std::move(pre), std::move(events)));
            continue;
        }
        std::vector<std::string> keys{k.queued(queue), k.scheduled(queue), jobs_index(queue),
                                      k.marker(queue), k.meta(queue),      k.unique(queue)};
        std::vector<std::string> args{now_text, k.updates_channel(), std::move(events), shown(queue)};
        keys.reserve(keys.size() + (end - start));
        args.reserve(args.size() + 24 * (end - start));
        for (std::size_t j = start; j < end; ++j) {
            auto& s = st.specs[idx[j]];
            const auto& id = st.ids[idx[j]];
            keys.push_back(k.job(queue, id));
            // id, unique_key, status, score, n, then the record's n HSET arguments.
            const auto status = codec::new_status(s, now);
            args.push_back(id);
            args.push_back(s.unique_key);
            args.emplace_back(status);
            args.push_back(std::to_string(status == "scheduled" ? s.run_at : queued_score(s.priority, now)));
            const std::size_t count_at = args.size();
            args.emplace_back();
            codec::append_new_record(args, s, now, opts_.compact_records);
            args[count_at] = std::to_string(args.size() - count_at - 1);
        }
        auto r = co_await run_script_after(conn_, std::move(pre), scripts::submit(opts_.compact_records), std::move(keys),
                                           std::move(args), replication_for(opts_, queue));
        if (!r) co_return r.error();
        const auto& e = r->elements;
        for (std::size_t j = start; j < end; ++j) {
            std::size_t p = 3 * (j - start);
            if (p + 2 >= e.size()) co_return errc::bad_reply;
            submit_result sr;
            sr.id = e[p].str;
            sr.duplicate = int_of(e[p + 2]) == 1;
            sr.created_at = now;
            if (!sr.duplicate) {
                sr.status = parse_job_status(e[p + 1].str).value_or(job_status::queued);
            } else {
                // Drop the index entry written for the id that was not used.
                if (indexed) co_await conn_.exec(command{"HDEL", k.ids(), st.ids[idx[j]]});
                auto existing = co_await get(sr.id);
                if (existing) {
                    sr.status = existing->status;
                    sr.created_at = existing->created_at;
                }
            }
            // A new job's id names its queue by its tag (an untagged one, or a duplicate's older id, may not).
            if (indexed || sr.duplicate) impl_->queues.put(sr.id, queue);
            st.out[idx[j]] = std::move(sr);
        }
    }
    if (plain.size() == 1) co_await std::move(plain.front());  // a lone batch: no task to spawn
    else if (!plain.empty()) co_await run_all(std::move(plain));
    if (st.error) co_return st.error;
    co_return boost::system::error_code{};
}

// One batch of a submit that creates every job (no unique_key, so no duplicate;
// no parents): the submit script's writes as plain commands in one MULTI/EXEC,
// written after `pre` in one write (one round trip). Redis runs no Lua for it: a
// record's HSET arguments are read once, not turned into Lua strings and back
// (docs/benchmarks.md). Not on a cluster, where a redirect inside a transaction
// aborts it: there the script goes.
asio::awaitable<boost::system::error_code> broker::submit_plain(const std::string& queue, submit_state& st,
                                                                const std::vector<std::size_t>& idx,
                                                                std::size_t start, std::size_t end, millis now,
                                                                bool indexed, std::vector<command> pre,
                                                                std::string events) {
    const auto& k = impl_->k;
    auto cmds = std::move(pre);
    const std::size_t multi_at = cmds.size();
    cmds.reserve(multi_at + (end - start) + 9);
    cmds.emplace_back("MULTI");
    command queued{"ZADD", k.queued(queue)}, scheduled{"ZADD", k.scheduled(queue)};
    // The batch's entry in the `jobs` stream (the script's index(); the `all` set, classic).
    command all = opts_.compact_records ? command{"XADD", k.jobs(queue), "*"} : command{"ZADD", k.all(queue)};
    for (std::size_t j = start; j < end; ++j) {
        const auto& s = st.specs[idx[j]];
        const auto& id = st.ids[idx[j]];
        command record{"HSET", k.job(queue, id)};
        codec::append_new_record(record.args(), s, now, opts_.compact_records);
        cmds.push_back(std::move(record));
        if (codec::new_status(s, now) == "scheduled") scheduled.arg(s.run_at).arg(id);
        else queued.arg(queued_score(s.priority, now)).arg(id);
        if (opts_.compact_records) all.arg(id).arg("");
        else all.arg("0").arg(id);
    }
    if (queued.args().size() > 2) cmds.push_back(std::move(queued));
    if (scheduled.args().size() > 2) cmds.push_back(std::move(scheduled));
    cmds.push_back(std::move(all));
    cmds.push_back(command{"HINCRBY", k.meta(queue), "submitted", end - start});
    cmds.push_back(command{"ZADD", k.marker(queue), "0", "w"});
    cmds.push_back(command{"PUBLISH", k.updates_channel(), std::move(events)});
    cmds.emplace_back("EXEC");
    const std::size_t exec_at = cmds.size() - 1;
    const auto rep = replication_for(opts_, queue);
    if (rep.replicas > 0) cmds.push_back(command{"WAIT", rep.replicas, rep.timeout.count()});
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    if (r->size() != exec_at + 1 + (rep.replicas > 0 ? 1 : 0)) co_return errc::bad_reply;
    // A command refused while queued (OOM, say) aborts the whole transaction: nothing written.
    if (any_error(*r, 0, exec_at)) co_return errc::redis_error;
    const auto& done = (*r)[exec_at];
    if (!done.is_array()) {
        log::get("store")->error("submit transaction failed: {}", done.is_error() ? done.str : "aborted");
        co_return errc::redis_error;
    }
    if (any_error(done.elements, 0, done.elements.size())) co_return errc::redis_error;
    if (rep.replicas > 0)
        if (auto ok = check_replicated(r->back(), rep); !ok) co_return ok.error();
    for (std::size_t j = start; j < end; ++j) {
        const auto& id = st.ids[idx[j]];
        submit_result sr;
        sr.id = id;
        sr.status = parse_job_status(codec::new_status(st.specs[idx[j]], now)).value_or(job_status::queued);
        sr.created_at = now;
        if (indexed) impl_->queues.put(id, queue);  // else the id's tag names the queue
        st.out[idx[j]] = std::move(sr);
    }
    co_return boost::system::error_code{};
}

// The queue's registration: listed in the queue set (with its logical queue when
// it is a partition) and its tag resolvable both ways. Idempotent.
std::vector<command> broker::registration(const std::string& queue, std::uint16_t tag) {
    const auto& k = impl_->k;
    std::vector<command> pre;
    pre.push_back(command{"SADD", k.queues(), queue});
    if (partition_index(queue) > 0) pre.push_back(command{"SADD", k.queues(), shown(queue)});
    if (tag != 0) {
        pre.push_back(command{"HSETNX", k.queue_tags(), "n:" + std::to_string(tag), queue});
        pre.push_back(command{"HSETNX", k.queue_tags(), "q:" + queue, std::to_string(tag)});
    }
    return pre;
}

// The queue a job id of an earlier version (or an untagged one) belongs to: the ids index.
static asio::awaitable<result<std::string>> indexed_queue_of(redis::connection& conn, const keys& k,
                                                             std::string id) {
    if (!is_valid_job_id(id)) co_return errc::job_not_found;
    auto r = co_await run_cmd(conn, command{"HGET", k.ids(), id});
    if (!r) co_return r.error();
    if (r->is_nil()) co_return errc::job_not_found;
    co_return std::move(r->str);
}

// The queue a job id belongs to: named by the tag in the id (make_job_id), else
// by the ids index; job_not_found when neither knows it. Through the cache.
static asio::awaitable<result<std::string>> cached_queue_of(redis::connection& conn, broker::impl& im,
                                                            std::string id) {
    if (auto hit = im.queues.find(id)) co_return std::move(*hit);
    if (!is_valid_job_id(id)) co_return errc::job_not_found;
    if (auto tag = job_id_tag(id)) {
        if (auto name = im.tags.queue(*tag)) co_return std::move(*name);
        auto r = co_await run_cmd(conn, command{"HGET", im.k.queue_tags(), "n:" + std::to_string(*tag)});
        if (!r) co_return r.error();
        if (!r->is_nil()) {
            im.tags.put(r->str, *tag);
            co_return std::move(r->str);
        }
    }
    auto q = co_await indexed_queue_of(conn, im.k, id);
    if (q) im.queues.put(id, *q);
    co_return q;
}

// A job with parents: checked (each parent must exist and, for a tenant's job,
// be the same tenant's), created `waiting` in its queue, then attached to each
// parent in the parent's queue. A parent already finished is resolved at once.
// The 201 comes after every attach: a process that dies before leaves a waiting
// job nobody was told about (docs/keys.md, "Dependencies").
asio::awaitable<void> broker::submit_child(std::shared_ptr<submit_state> state, std::string queue, std::size_t i,
                                           millis now, std::string gate) {
    const auto& k = impl_->k;
    auto& st = *state;
    auto& s = st.specs[i];
    auto tenants = co_await owners(s.depends_on);
    if (!tenants) {
        st.error = tenants.error();
        co_return;
    }
    for (const auto& t : *tenants)
        if (!t || (!s.tenant.empty() && *t != s.tenant)) {
            st.out[i] = errc::unknown_dependency;
            co_return;
        }
    auto tag = co_await queue_tag(queue);
    if (!tag) {
        st.error = tag.error();
        co_return;
    }
    const auto id = make_job_id(now, *tag);
    boost::json::array parents;
    for (const auto& p : s.depends_on) parents.emplace_back(p);
    std::vector<std::string> keys{k.waiting(queue), jobs_index(queue), k.meta(queue), k.unique(queue), k.job(queue, id)};
    std::vector<std::string> args{std::to_string(now),
                                  k.updates_channel(),
                                  std::to_string(opts_.max_events),
                                  shown(queue),
                                  id,
                                  std::to_string(s.priority),
                                  std::to_string(s.max_retries),
                                  std::to_string(s.timeout.count()),
                                  std::to_string(s.ttl.count()),
                                  s.unique_key,
                                  s.tenant,
                                  s.payload,
                                  boost::json::serialize(parents),
                                  std::to_string(s.depends_on.size() + (gate.empty() ? 0 : 1)),
                                  s.on_parent_failure};
    std::vector<command> pre;
    if (*tag == 0) pre.push_back(command{"HSET", k.ids(), id, queue});
    if (*tag == 0 || impl_->reassert(queue))
        for (auto& c : registration(queue, *tag)) pre.push_back(std::move(c));
    auto r = co_await run_script_after(conn_, std::move(pre), scripts::submit_waiting(opts_.compact_records), std::move(keys),
                                       std::move(args), replication_for(opts_, queue));
    if (!r || r->elements.size() != 2) {
        st.error = r ? make_error_code(errc::bad_reply) : r.error();
        co_return;
    }
    submit_result sr;
    sr.id = r->elements[0].str;
    sr.created_at = now;
    sr.status = job_status::waiting;
    if (int_of(r->elements[1]) == 1) {
        sr.duplicate = true;
        if (auto existing = co_await get(sr.id)) {
            sr.status = existing->status;
            sr.created_at = existing->created_at;
        }
        st.out[i] = std::move(sr);
        co_return;
    }
    impl_->queues.put(id, queue);
    // Attach to every parent (one script each, on the parent's shard); a flow's
    // gate is one more parent, not shown.
    std::set<std::string> to_resolve;
    auto attach_to = s.depends_on;
    if (!gate.empty()) attach_to.push_back(gate);
    for (const auto& p : attach_to) {
        auto pq = co_await cached_queue_of(conn_, *impl_, p);
        if (!pq) {
            st.error = pq.error() == errc::job_not_found ? make_error_code(errc::unknown_dependency) : pq.error();
            co_return;
        }
        std::vector<std::string> akeys{k.job(*pq, p), k.meta(*pq)};
        std::vector<std::string> aargs{p, id};
        auto a = co_await run_script(conn_, scripts::attach(), std::move(akeys), std::move(aargs));
        if (!a) {
            st.error = a.error();
            co_return;
        }
        if (a->str != "attached") to_resolve.insert(*pq);
    }
    for (const auto& pq : to_resolve) {
        auto d = co_await resolve_pending(pq, now);
        if (!d) impl_->log->warn("resolving the parents of {}: {}", id, d.error().message());
    }
    if (!to_resolve.empty())
        if (auto now_rec = co_await get(id)) sr.status = now_rec->status;
    st.out[i] = std::move(sr);
}

// Opens a flow's gate: its jobs are told it completed (and are delivered at once).
asio::awaitable<result<void>> broker::open_gate(std::string queue, std::string gate, millis now) {
    const auto& k = impl_->k;
    std::vector<std::string> keys{k.job(queue, gate), k.meta(queue)};
    std::vector<std::string> args{gate};
    auto r = co_await run_script(conn_, scripts::open_gate(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    co_await deliver(queue, now);
    co_return result<void>{};
}

asio::awaitable<result<flow_result>> broker::submit_flow(std::vector<flow_job> jobs, millis now) {
    const auto& k = impl_->k;
    if (jobs.empty() || jobs.size() > max_flow_jobs) co_return errc::invalid_argument;
    auto state = std::make_shared<submit_state>();
    auto& st = *state;
    st.out.assign(jobs.size(), result<submit_result>{errc::invalid_argument});
    st.ids.resize(jobs.size());
    std::vector<std::string> queues;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        auto& s = jobs[i].spec;
        // A flow's jobs are new ones: a unique_key could hand back a live job instead.
        if (!s.unique_key.empty() || s.run_at > now) co_return errc::invalid_argument;
        for (auto a : jobs[i].after)
            if (a >= i) co_return errc::invalid_argument;  // not in topological order
        if (jobs[i].after.size() + s.depends_on.size() > max_parents) co_return errc::invalid_argument;
        if (auto bad = check(s, now)) co_return bad;
        queues.push_back(route(s));
        st.specs.push_back(s);
    }
    // The gate, in the first job's queue.
    const std::string gate_queue = queues.front();
    auto tag = co_await queue_tag(gate_queue);
    if (!tag) co_return tag.error();
    const std::string gate = make_job_id(now, *tag);
    {
        std::vector<std::string> keys{k.job(gate_queue, gate)};
        std::vector<std::string> args{std::to_string(now)};
        std::vector<command> pre;
        if (*tag == 0) pre.push_back(command{"HSET", k.ids(), gate, gate_queue});
        auto r = co_await run_script_after(conn_, std::move(pre), scripts::flow_gate(), std::move(keys),
                                           std::move(args));
        if (!r) co_return r.error();
        impl_->queues.put(gate, gate_queue);
    }
    // Every job, parents first, each waiting for the gate too.
    std::size_t made = 0;
    boost::system::error_code failed;
    for (std::size_t i = 0; i < jobs.size() && !failed; ++i) {
        auto& s = st.specs[i];
        for (auto a : jobs[i].after) s.depends_on.push_back(st.out[a]->id);
        std::sort(s.depends_on.begin(), s.depends_on.end());
        s.depends_on.erase(std::unique(s.depends_on.begin(), s.depends_on.end()), s.depends_on.end());
        co_await submit_child(state, queues[i], i, now, gate);
        if (st.error) failed = st.error;
        else if (!st.out[i]) failed = st.out[i].error();
        else ++made;
    }
    if (failed) {
        // None of it: delete what was made (their own children first, last made
        // first), then open the gate, which finds nobody to tell.
        for (std::size_t i = made; i-- > 0;) co_await remove(st.out[i]->id, now);
        if (auto r = co_await open_gate(gate_queue, gate, now); !r)
            impl_->log->warn("flow {}: removing its gate: {}", gate, r.error().message());
        co_return failed;
    }
    if (auto r = co_await open_gate(gate_queue, gate, now); !r) co_return r.error();  // the jobs wait; DELETE them to give up
    flow_result fr;
    fr.flow_id = gate;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        auto rec = co_await get(st.out[i]->id);
        auto sr = std::move(*st.out[i]);
        if (rec) sr.status = rec->status;
        fr.jobs.push_back(std::move(sr));
    }
    co_return fr;
}

asio::awaitable<result<std::size_t>> broker::resolve_pending(std::string queue, millis now) {
    const auto& k = impl_->k;
    std::vector<std::string> work{std::move(queue)};
    std::size_t delivered = 0;
    for (int rounds = 0; !work.empty() && rounds < 1000; ++rounds) {
        auto q = std::move(work.back());
        work.pop_back();
        auto r = co_await run_cmd(conn_, command{"LRANGE", k.resolved(q), 0, 99});
        if (!r) co_return r.error();
        if (r->elements.empty()) continue;
        std::vector<command> done;
        for (const auto& e : r->elements) {
            // "<child> <parent> <outcome>"
            const std::string& entry = e.str;
            auto a = entry.find(' '), b = entry.rfind(' ');
            if (a == std::string::npos || b == a) {
                done.push_back(command{"LREM", k.resolved(q), 1, entry});  // malformed: drop
                continue;
            }
            auto child = entry.substr(0, a), parent = entry.substr(a + 1, b - a - 1), outcome = entry.substr(b + 1);
            auto cq = co_await cached_queue_of(conn_, *impl_, child);
            if (cq) {
                std::vector<std::string> keys{k.job(*cq, child), k.waiting(*cq), k.queued(*cq),   k.marker(*cq),
                                              k.meta(*cq),       k.failed(*cq),  k.cancelled(*cq), k.unique(*cq)};
                std::vector<std::string> args{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events),
                                              shown(*cq),          child,               parent,
                                              outcome};
                auto x = co_await run_script(conn_, scripts::resolve(), std::move(keys), std::move(args));
                if (!x) co_return x.error();
                if (x->elements.size() == 2 && int_of(x->elements[1]) > 0) work.push_back(*cq);
                ++delivered;
            } else if (cq.error() != errc::job_not_found) {
                co_return cq.error();
            }
            done.push_back(command{"LREM", k.resolved(q), 1, entry});
        }
        auto d = co_await conn_.exec_many(std::move(done));
        if (!d) co_return d.error();
        if (r->elements.size() == 100) work.push_back(q);
    }
    co_return delivered;
}

asio::awaitable<result<job_record>> broker::get(std::string id) {
    auto q = co_await cached_queue_of(conn_, *impl_, id);
    if (!q) co_return q.error();
    auto r = co_await run_cmd(conn_, command{"HGETALL", impl_->k.job(*q, id)});
    if (!r) co_return r.error();
    if (r->elements.empty() && job_id_tag(id)) {
        // An earlier version's id whose random bits happen to look tagged: the index knows.
        auto indexed = co_await indexed_queue_of(conn_, impl_->k, id);
        if (indexed && *indexed != *q) {
            impl_->queues.put(id, *indexed);
            q = std::move(indexed);
            r = co_await run_cmd(conn_, command{"HGETALL", impl_->k.job(*q, id)});
            if (!r) co_return r.error();
        }
    }
    auto j = codec::decode_job(*r, opts_.clock->now());
    if (j) {
        j->id = std::move(id);  // the key's (the record does not repeat them)
        j->queue = shown(*q);
    }
    co_return j;
}

asio::awaitable<result<std::string>> broker::owner(std::string id) {
    auto q = co_await cached_queue_of(conn_, *impl_, id);
    if (!q) co_return q.error();
    auto r = co_await run_cmd(conn_, command{"HMGET", impl_->k.job(*q, id), "status", "tenant"});
    if (!r) co_return r.error();
    if (!r->is_array() || r->elements.size() != 2) co_return errc::bad_reply;
    if (r->elements[0].is_nil()) co_return errc::job_not_found;
    co_return r->elements[1].is_nil() ? std::string{} : std::move(r->elements[1].str);
}

asio::awaitable<result<std::vector<std::optional<std::string>>>> broker::owners(std::vector<std::string> ids) {
    std::vector<std::optional<std::string>> out(ids.size());
    std::vector<command> cmds;
    std::vector<std::size_t> asked;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto q = co_await cached_queue_of(conn_, *impl_, ids[i]);  // usually no I/O: the id names it
        if (!q) {
            if (q.error() == errc::job_not_found) continue;
            co_return q.error();
        }
        cmds.push_back(command{"HMGET", impl_->k.job(*q, ids[i]), "status", "tenant"});
        asked.push_back(i);
    }
    if (cmds.empty()) co_return out;
    auto r = co_await conn_.exec_many(std::move(cmds));  // one round trip for all
    if (!r) co_return r.error();
    for (std::size_t j = 0; j < asked.size(); ++j) {
        const auto& f = (*r)[j].elements;
        if (f.size() != 2 || f[0].is_nil()) continue;  // gone meanwhile
        out[asked[j]] = f[1].is_nil() ? std::string{} : f[1].str;
    }
    co_return out;
}

asio::awaitable<result<job_result>> broker::get_result(std::string id) {
    const auto& k = impl_->k;
    auto q = co_await cached_queue_of(conn_, *impl_, id);
    if (!q) co_return q.error();
    // Small results live in the record (until ttl after completion), large ones in a key with a TTL.
    // The whole record: it is small, and its history says when the job completed.
    std::vector<command> cmds;
    cmds.push_back(command{"HGETALL", k.job(*q, id)});
    cmds.push_back(command{"GET", k.result(*q, id)});
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    auto rec = codec::decode_job((*r)[0], opts_.clock->now());
    if (!rec) co_return rec.error();
    auto held = codec::inline_result((*r)[0]);
    if (held && rec->status == job_status::expired) co_return errc::result_expired;
    if (rec->status != job_status::completed && rec->status != job_status::expired) co_return errc::result_not_ready;
    const reply* stored = &(*r)[1];
    reply inline_reply;
    if (held) {
        inline_reply.type = reply::kind::string;
        inline_reply.str = std::move(*held);
        stored = &inline_reply;
    }
    if (stored->is_nil()) co_return errc::result_expired;
    auto data = codec::decode_result(stored->str);
    if (!data) co_return data.error();
    co_return job_result{std::move(*data)};
}

asio::awaitable<result<job_status>> broker::cancel(std::string id, millis now) {
    const auto& k = impl_->k;
    auto q = co_await cached_queue_of(conn_, *impl_, id);
    if (!q) co_return q.error();
    const auto& queue = *q;
    std::vector<std::string> keys_v{k.queued(queue), k.scheduled(queue), k.active(queue), k.cancelled(queue), k.meta(queue), k.unique(queue),
         k.cancels(queue), k.job(queue, id), k.waiting(queue)};
    std::vector<std::string> args_v{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events), shown(queue), id, k.cancel_channel()};
    auto r = co_await run_script(conn_, scripts::cancel(), std::move(keys_v), std::move(args_v));
    if (!r) co_return r.error();
    const auto& s = r->str;
    if (s == "ok:cancelled") {
        co_await deliver(queue, now);  // its children, if any waited for it
        co_return job_status::cancelled;
    }
    if (s == "ok:cancelling") co_return job_status::in_progress;
    if (s == "missing") co_return errc::job_not_found;
    co_return errc::invalid_state;
}

asio::awaitable<result<void>> broker::remove(std::string id, millis now) {
    const auto& k = impl_->k;
    auto q = co_await cached_queue_of(conn_, *impl_, id);
    if (!q) co_return q.error();
    const auto& queue = *q;
    std::vector<std::string> keys_v{k.queued(queue), k.scheduled(queue), k.active(queue), k.leases(queue),
                                  k.completed(queue), k.failed(queue), k.cancelled(queue), k.all(queue),
                                  k.unique(queue), k.cancels(queue), k.job(queue, id), k.progress(queue, id),
                                  k.result(queue, id), k.events(queue, id), k.waiting(queue), k.meta(queue)};
    std::vector<std::string> args_v{std::to_string(now), k.updates_channel(), shown(queue), id, k.cancel_channel()};
    auto r = co_await run_script(conn_, scripts::remove(), std::move(keys_v), std::move(args_v));
    if (!r) co_return r.error();
    co_await deliver(queue, now);
    auto d = co_await run_cmd(conn_, command{"HDEL", k.ids(), id});
    if (!d) co_return d.error();
    if (int_of(*r) == 0) co_return errc::job_not_found;
    co_return result<void>{};
}

asio::awaitable<result<void>> broker::retry(std::string id, millis now) {
    const auto& k = impl_->k;
    auto q = co_await cached_queue_of(conn_, *impl_, id);
    if (!q) co_return q.error();
    const auto& queue = *q;
    std::vector<std::string> keys_v{k.failed(queue), k.cancelled(queue), k.queued(queue), k.marker(queue),
                                  k.unique(queue), k.job(queue, id), k.result(queue, id)};
    std::vector<std::string> args_v{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events), shown(queue),
                                  id};
    auto r = co_await run_script(conn_, scripts::retry(), std::move(keys_v), std::move(args_v));
    if (!r) co_return r.error();
    if (r->str == "queued") co_return result<void>{};
    if (r->str == "missing") co_return errc::job_not_found;
    co_return errc::invalid_state;
}

namespace {

// Stream entries (XRANGE / XREVRANGE reply) -> job events.
result<std::vector<job_event>> decode_events(const reply& r) {
    std::vector<job_event> out;
    for (const auto& entry : r.elements) {
        if (!entry.is_array() || entry.elements.size() != 2) return errc::bad_reply;
        job_event ev;
        ev.id = entry.elements[0].str;
        const auto& f = entry.elements[1].elements;
        for (std::size_t i = 0; i + 1 < f.size(); i += 2) {
            if (f[i].str == "type") ev.type = f[i + 1].str;
            else if (f[i].str == "data") ev.data = f[i + 1].str;
        }
        out.push_back(std::move(ev));
    }
    return out;
}

}  // namespace

namespace {

// An event id a client may hand back: "<k>-<j>" (k status entries and j progress
// events seen, the ids this version gives), or a previous version's stream id
// "<ms>-<seq>" (its first part is a time in ms: far larger than any count).
struct event_cursor {
    long long status = 0, progress = 0;
    std::string stream;  // a previous version's stream id, else empty
};

constexpr long long stream_id_floor = 100'000'000'000LL;  // 1973 in ms; no job has that many events

event_cursor parse_cursor(std::string_view after) {
    event_cursor c;
    if (after.empty() || after == "0") return c;
    auto dash = after.find('-');
    auto first = after.substr(0, dash);
    long long a = 0, b = 0;
    std::from_chars(first.data(), first.data() + first.size(), a);
    if (dash != std::string_view::npos) {
        auto second = after.substr(dash + 1);
        std::from_chars(second.data(), second.data() + second.size(), b);
    }
    // Callers validate the syntax; a value too large to parse counts as "past the end".
    if (a == 0 && first != "0") a = std::numeric_limits<long long>::max();
    if (a >= stream_id_floor) {
        c.stream = std::string{after};
        return c;
    }
    c.status = a;
    c.progress = b;
    return c;
}

std::string event_id(long long status, long long progress) {
    return std::to_string(status) + "-" + std::to_string(progress);
}

std::string implied_first_entry(std::string_view created_at) {
    return fmt::format(R"({{"status":"queued","ts":{}}})", created_at.empty() ? "0" : created_at);
}

}  // namespace

asio::awaitable<result<std::vector<job_event>>> broker::events(std::string id, std::string after,
                                                               std::size_t count) {
    const auto& k = impl_->k;
    auto q = co_await cached_queue_of(conn_, *impl_, id);
    if (!q) co_return q.error();
    auto cur = parse_cursor(after);
    std::vector<command> head;
    head.push_back(command{"HMGET", k.job(*q, id), "status", "hn", "pn", "legacy", "created_at", "st", "attempts"});
    head.push_back(command{"LLEN", k.progress(*q, id)});
    auto h = co_await conn_.exec_many(std::move(head));
    if (!h) co_return h.error();
    const auto& f = (*h)[0].elements;
    if (f.size() != 7) co_return errc::bad_reply;
    if (f[0].is_nil()) co_return errc::job_not_found;
    const long long stored = to_ll(f[1].str), pn = to_ll(f[2].str), llen = int_of((*h)[1]);
    // A pending start (take's `st`) is the entry after the stored ones.
    const std::string pending = codec::start_entry(f[5].str, static_cast<int>(to_ll(f[6].str)) + 1);
    const long long hn = stored + (pending.empty() ? 0 : 1);
    const std::string created = f[4].str;
    const bool legacy = f[1].is_nil() || f[3].str == "1";
    std::vector<job_event> out;
    if (!legacy && !cur.stream.empty()) co_return out;  // a stream-style id is past this job's end

    // A job a previous version wrote: its stream first (ids "<ms>-<seq>"), then
    // the history this version added. A cursor of this version's kind is past it.
    if (legacy && (cur.status == 0 && cur.progress == 0)) {
        std::string start = cur.stream.empty() ? std::string{"-"} : "(" + cur.stream;
        auto r = co_await run_cmd(conn_, command{"XRANGE", k.events(*q, id), start, "+", "COUNT", count});
        if (!r) co_return r.error();
        auto evs = decode_events(*r);
        if (!evs) co_return evs.error();
        out = std::move(*evs);
        if (out.size() >= count) co_return out;
    }

    // This version: status history h1..hn and the progress list, merged. Progress
    // entry "<s>|<json>" follows status entry s; ids are "<k>-<j>".
    const long long first_g = pn - llen + 1;  // global index of the list's first entry
    std::vector<command> body;
    bool want_status = hn > cur.status, want_progress = pn > cur.progress && llen > 0;
    if (!want_status && !want_progress) co_return out;
    const bool read_status = want_status && cur.status < stored;  // not only the pending start
    command hist{"HMGET", k.job(*q, id)};
    for (long long i = cur.status + 1; i <= stored; ++i) hist.arg("h" + std::to_string(i));
    if (read_status) body.push_back(std::move(hist));
    if (want_progress)
        body.push_back(command{"LRANGE", k.progress(*q, id), std::max(0LL, cur.progress + 1 - first_g), -1});
    std::vector<reply> replies;
    if (!body.empty()) {
        auto r = co_await conn_.exec_many(std::move(body));
        if (!r) co_return r.error();
        replies = std::move(*r);
    }
    std::vector<std::string> statuses;
    std::vector<std::pair<long long, std::string>> progress;  // (follows status s, data)
    std::size_t next = 0;
    if (read_status) {
        for (auto& e : replies[next].elements) statuses.push_back(codec::history_json(std::move(e.str)));
        // Entry 1 of a job queued at once is not stored: it is its creation.
        if (cur.status == 0 && !legacy && !statuses.empty() && statuses.front().empty())
            statuses.front() = implied_first_entry(created);
        ++next;
    }
    if (want_status && !pending.empty()) statuses.push_back(codec::history_json(pending));
    long long g = std::max(cur.progress, first_g - 1);
    if (want_progress)
        for (auto& e : replies[next].elements) {
            auto bar = e.str.find('|');
            if (bar == std::string::npos) continue;
            progress.emplace_back(to_ll(std::string_view{e.str}.substr(0, bar)), e.str.substr(bar + 1));
        }
    long long kk = cur.status, jj = cur.progress;
    std::size_t si = 0, pi = 0;
    while (out.size() < count && (si < statuses.size() || pi < progress.size())) {
        job_event ev;
        bool take_progress = pi < progress.size() && (si >= statuses.size() || progress[pi].first <= kk);
        if (take_progress) {
            jj = ++g;
            ev.type = "progress";
            ev.data = std::move(progress[pi++].second);
        } else {
            ++kk;
            ev.type = "status";
            ev.data = std::move(statuses[si++]);
        }
        ev.id = event_id(kk, jj);
        if (ev.data.empty()) continue;  // an entry a concurrent write has not finished
        out.push_back(std::move(ev));
    }
    co_return out;
}

asio::awaitable<result<std::optional<job_event>>> broker::last_event(std::string id) {
    const auto& k = impl_->k;
    auto q = co_await cached_queue_of(conn_, *impl_, id);
    if (!q) co_return q.error();
    auto h = co_await run_cmd(conn_, command{"HMGET", k.job(*q, id), "status", "hn", "pn", "created_at", "st",
                                             "attempts"});
    if (!h) co_return h.error();
    const auto& f = h->elements;
    if (f.size() != 6) co_return errc::bad_reply;
    if (f[0].is_nil()) co_return errc::job_not_found;
    // Progress only happens while the last status entry is still to come, so
    // the newest event is the last status entry, after every progress event.
    auto pending = codec::start_entry(f[4].str, static_cast<int>(to_ll(f[5].str)) + 1);
    if (!pending.empty()) {
        const long long hn = to_ll(f[1].str) + 1, pn = to_ll(f[2].str);
        co_return std::optional<job_event>{job_event{event_id(hn, pn), "status", codec::history_json(std::move(pending))}};
    }
    if (!f[1].is_nil()) {
        const long long hn = to_ll(f[1].str), pn = to_ll(f[2].str);
        auto d = co_await run_cmd(conn_, command{"HGET", k.job(*q, id), "h" + std::to_string(hn)});
        if (!d) co_return d.error();
        if (d->is_nil() && hn == 1) d->str = implied_first_entry(f[3].str);
        else if (d->is_nil()) co_return std::optional<job_event>{};
        co_return std::optional<job_event>{job_event{event_id(hn, pn), "status", codec::history_json(std::move(d->str))}};
    }
    auto r = co_await run_cmd(conn_, command{"XREVRANGE", k.events(*q, id), "+", "-", "COUNT", 1});
    if (!r) co_return r.error();
    auto evs = decode_events(*r);
    if (!evs) co_return evs.error();
    if (evs->empty()) co_return std::optional<job_event>{};
    co_return std::optional<job_event>{std::move(evs->front())};
}

// ---------------------------------------------------------------- listing

// Lists without a status filter run over the `jobs` stream, then the `all` set in id
// order (ids sort by creation time); completed (and expired) jobs over `done`, then
// the `completed` set; other statuses over their sorted set in (score, id) order.
// All newest first (job_index.hpp).
asio::awaitable<result<job_page>> broker::list(list_query q) {
    using job_index::position;
    const auto& k = impl_->k;
    if (q.limit == 0 || q.limit > 1000) co_return errc::invalid_argument;
    if (!q.queue.empty() && !valid_queue_name(q.queue)) co_return errc::invalid_argument;
    const bool by_score = q.status.has_value();
    std::optional<position> cursor;
    if (!q.cursor.empty()) {
        cursor = job_index::decode(q.cursor, by_score);
        if (!cursor) co_return errc::invalid_argument;
    }
    std::vector<std::string> queues;
    if (!q.queue.empty()) {
        auto parts = co_await partitions_of(q.queue);
        if (!parts) co_return parts.error();
        queues = std::move(*parts);
    } else {
        auto names = co_await queue_names();
        if (!names) co_return names.error();
        queues = std::move(*names);
    }
    auto set_of = [&](const std::string& queue) {
        switch (*q.status) {
            case job_status::queued: return k.queued(queue);
            case job_status::scheduled: return k.scheduled(queue);
            case job_status::validating:
            case job_status::in_progress: return k.active(queue);
            case job_status::completed:
            case job_status::expired: return k.completed(queue);
            case job_status::failed: return k.failed(queue);
            case job_status::cancelled: return k.cancelled(queue);
            case job_status::waiting: return k.waiting(queue);
        }
        return k.all(queue);
    };
    const bool streamed =
        !by_score || *q.status == job_status::completed || *q.status == job_status::expired;
    const millis now = opts_.clock->now();
    job_page page;
    std::vector<std::pair<position, job_record>> found;
    std::vector<position> stopped;  // where queues that ran out of rounds stopped reading
    // Each queue is read in windows until it yields `limit` matches, runs dry or has
    // had 20 windows; the merged, newest-first result is then cut to `limit`.
    for (const auto& queue : queues) {
        // Its stream first (unless the cursor is past it), then its sorted set.
        bool in_stream = streamed && (!cursor || cursor->phase == 1);
        std::optional<position> pos = cursor;
        std::size_t matched = 0;
        bool finished = false;  // read to the end of its indexes
        for (int round = 0; round < 20 && matched < q.limit; ++round) {
            std::size_t window = q.limit + 16;
            std::vector<position> candidates;
            bool exhausted = false;
            if (in_stream) {
                // (GCC 12 frees a `?:` temporary in a co_await's arguments twice: named first.)
                std::string stream = k.jobs(queue);
                if (by_score) stream = k.done(queue);
                auto s = co_await job_index::newest(conn_, std::move(stream), pos, window);
                if (!s) co_return s.error();
                candidates = std::move(s->items);
                if (s->exhausted) {
                    // On to the sorted set, from its newest (every place in it is
                    // older than a stream place).
                    in_stream = false;
                    if (candidates.empty()) continue;
                }
            } else {
                command c;
                if (!by_score) {
                    std::string max = pos && pos->phase == 0 ? "(" + pos->id : std::string{"+"};
                    c = command{"ZRANGE", k.all(queue), max, "-", "BYLEX", "REV", "LIMIT", 0, window};
                } else {
                    std::string max = pos && pos->phase == 0 ? std::to_string(pos->score) : std::string{"+inf"};
                    c = command{"ZREVRANGEBYSCORE", set_of(queue), max, "-inf", "WITHSCORES", "LIMIT", 0, window};
                }
                auto r = co_await run_cmd(conn_, std::move(c));
                if (!r) co_return r.error();
                const auto& e = r->elements;
                std::size_t step = by_score ? 2 : 1;
                for (std::size_t i = 0; i + step - 1 < e.size(); i += step) {
                    position p{0, by_score ? to_ll(e[i + 1].str) : 0, 0, 0, e[i].str};
                    if (pos && !job_index::newer(*pos, p, by_score)) continue;  // at or before the cursor
                    candidates.push_back(std::move(p));
                }
                exhausted = e.size() < window * step;
                if (candidates.empty()) {
                    if (exhausted) {
                        finished = true;
                        break;
                    }
                    // Everything in this window tied with the cursor: widen by moving past it.
                    if (by_score && pos && pos->phase == 0)
                        pos = position{0, pos->score - 1, 0, 0, "ffffffff-ffff-ffff-ffff-ffffffffffff"};
                    continue;
                }
            }
            std::vector<command> gets;
            for (const auto& p : candidates) gets.push_back(command{"HGETALL", k.job(queue, p.id)});
            auto recs = co_await conn_.exec_many(std::move(gets));
            if (!recs) co_return recs.error();
            for (std::size_t i = 0; i < candidates.size(); ++i) {
                pos = candidates[i];
                auto j = codec::decode_job((*recs)[i], now);
                if (!j) continue;  // deleted meanwhile (or an index entry left by a deletion)
                j->id = candidates[i].id;
                j->queue = shown(queue);
                if (!q.tenant.empty() && j->tenant != q.tenant) continue;
                if (q.status && j->status != *q.status) continue;
                found.emplace_back(candidates[i], std::move(*j));
                if (++matched >= q.limit) break;
            }
            if (exhausted) {
                finished = true;
                break;
            }
        }
        if (!finished && matched < q.limit && pos) stopped.push_back(*pos);
    }
    // A queue that ran out of windows (a long run of entries whose jobs are gone, or
    // of jobs the filter skips) was read only down to where it stopped: the page ends
    // there, and its cursor resumes from that place even when no job is on the page.
    std::optional<position> cut;
    for (const auto& p : stopped)
        if (!cut || job_index::newer(p, *cut, by_score)) cut = p;
    if (cut) std::erase_if(found, [&](const auto& f) { return !job_index::newer(f.first, *cut, by_score); });
    std::sort(found.begin(), found.end(),
              [&](const auto& a, const auto& b) { return job_index::newer(a.first, b.first, by_score); });
    bool more = found.size() > q.limit;
    if (found.size() > q.limit) found.resize(q.limit);
    for (auto& [p, j] : found) page.jobs.push_back(std::move(j));
    if (!found.empty() && (more || found.size() == q.limit))
        page.next_cursor = job_index::encode(found.back().first, by_score);
    else if (cut)
        page.next_cursor = job_index::encode(*cut, by_score);
    co_return page;
}

// ---------------------------------------------------------------- queues

asio::awaitable<result<std::vector<std::string>>> broker::queue_names() {
    auto r = co_await run_cmd(conn_, command{"SMEMBERS", impl_->k.queues()});
    if (!r) co_return r.error();
    auto names = string_list(*r);
    std::sort(names.begin(), names.end());
    co_return names;
}

asio::awaitable<result<std::vector<queue_info>>> broker::queues() {
    const auto& k = impl_->k;
    auto names = co_await queue_names();
    if (!names) co_return names.error();
    std::vector<queue_info> out;
    if (names->empty()) co_return out;
    std::vector<command> cmds;
    for (const auto& q : *names) {
        cmds.push_back(command{"HGETALL", k.meta(q)});
        cmds.push_back(command{"ZCARD", k.queued(q)});
        cmds.push_back(command{"ZCARD", k.scheduled(q)});
        // Not `active`'s +inf entry, which is no job (docs/keys.md, "Leases").
        cmds.push_back(command{"ZCOUNT", k.active(q), "-inf", "(+inf"});
        cmds.push_back(command{"ZCARD", k.completed(q)});
        cmds.push_back(command{"ZCARD", k.failed(q)});
        cmds.push_back(command{"ZCARD", k.cancelled(q)});
        cmds.push_back(command{"ZCARD", k.waiting(q)});
    }
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    // Names are sorted, and a partition's name starts with its queue's: the
    // partitions of one queue follow it, and are summed into it.
    for (std::size_t i = 0; i < names->size(); ++i) {
        const auto* base = &(*r)[8 * i];
        const auto logical = logical_queue((*names)[i]);
        if (out.empty() || out.back().name != logical) {
            out.emplace_back();
            out.back().name = std::string{logical};
        }
        queue_info& qi = out.back();
        const auto& meta = base[0].elements;
        for (std::size_t m = 0; m + 1 < meta.size(); m += 2) {
            const auto& f = meta[m].str;
            long long v = to_ll(meta[m + 1].str);
            if (f == "paused") qi.paused = qi.paused || v == 1;
            else if (f == "submitted") qi.submitted_total += v;
            else if (f == "completed") qi.completed_total += v;
            else if (f == "failed") qi.failed_total += v;
            else if (f == "retried") qi.retried_total += v;
            else if (f == "done") qi.completed += std::max(0LL, v);  // completed jobs in `done` (the set holds the rest)
        }
        qi.queued += int_of(base[1]);
        qi.scheduled += int_of(base[2]);
        qi.active += int_of(base[3]);
        qi.completed += int_of(base[4]);
        qi.failed += int_of(base[5]);
        qi.cancelled += int_of(base[6]);
        qi.waiting += int_of(base[7]);
    }
    co_return out;
}

asio::awaitable<result<std::vector<std::string>>> broker::partitions_of(std::string queue) {
    auto parts = partition_queues(queue, partitions_for(opts_, queue));
    // Partitions Redis knows beyond the configured ones: another process's
    // setting, or an earlier one's (their jobs are still there).
    auto names = co_await queue_names();
    if (!names) co_return names.error();
    for (auto& n : *names)
        if (logical_queue(n) == queue && std::find(parts.begin(), parts.end(), n) == parts.end())
            parts.push_back(std::move(n));
    co_return parts;
}

asio::awaitable<result<bool>> broker::queue_exists(std::string queue) {
    auto r = co_await run_cmd(conn_, command{"SISMEMBER", impl_->k.queues(), queue});
    if (!r) co_return result<bool>{boost::system::in_place_error, r.error()};
    co_return result<bool>{boost::system::in_place_value, int_of(*r) == 1};
}

asio::awaitable<result<void>> broker::pause(std::string queue) {
    co_return co_await set_paused(std::move(queue), true);
}

asio::awaitable<result<void>> broker::resume(std::string queue) {
    co_return co_await set_paused(std::move(queue), false);
}

// Every partition of the queue (each is a queue of its own to the claim script).
asio::awaitable<result<void>> broker::set_paused(std::string queue, bool paused) {
    if (!valid_queue_name(queue)) co_return errc::invalid_argument;
    auto parts = co_await partitions_of(queue);
    if (!parts) co_return parts.error();
    std::vector<command> cmds;
    cmds.push_back(command{"SADD", impl_->k.queues(), queue});
    for (const auto& p : *parts) {
        if (p != queue) cmds.push_back(command{"SADD", impl_->k.queues(), p});
        cmds.push_back(command{"HSET", impl_->k.meta(p), "paused", paused ? 1 : 0});
        if (!paused) cmds.push_back(command{"ZADD", impl_->k.marker(p), 0, "w"});  // wake blocked workers
    }
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    for (const auto& x : *r)
        if (x.is_error()) co_return errc::redis_error;
    co_return result<void>{};
}

// ---------------------------------------------------------------- worker side

namespace {

// One started job's reply fields (start and take scripts) -> claimed_job.
bool decode_started(const reply& f, claimed_job& j) {
    if (!f.is_array() || f.elements.size() < 8) return false;  // job deleted meanwhile
    if (f.elements[0].is_array()) {
        j.payload.clear();  // a payload stored in pieces (scripts.cpp, put_long)
        for (const auto& piece : f.elements[0].elements) j.payload += piece.str;
    } else {
        j.payload = f.elements[0].str;
    }
    j.attempt = static_cast<int>(int_of(f.elements[1]));
    // A limit at its built-in default is not stored (codec::append_new_record): ''.
    const auto& e = f.elements;
    j.max_retries = e[2].str.empty() ? default_max_retries : static_cast<int>(to_ll(e[2].str));
    j.timeout = e[3].str.empty() ? default_job_timeout : std::chrono::seconds{to_ll(e[3].str)};
    j.ttl = e[4].str.empty() ? default_result_ttl : std::chrono::seconds{to_ll(e[4].str)};
    j.created_at = to_ll(f.elements[5].str);
    j.unique_key = f.elements[6].str;
    j.history = static_cast<int>(int_of(f.elements[7]));
    if (f.elements.size() > 8 && !f.elements[8].str.empty()) {
        boost::system::error_code ec;
        auto v = boost::json::parse(f.elements[8].str, ec);
        if (!ec && v.is_array())
            for (const auto& p : v.get_array())
                if (p.is_string()) j.parents.emplace_back(p.get_string());
    }
    return true;
}

millis next_due_of(const reply& r) { return to_ll(r.str.empty() ? std::to_string(r.integer) : r.str); }

std::vector<std::string> ids_of(const reply& r) {
    std::vector<std::string> ids;
    ids.reserve(r.elements.size());
    for (const auto& e : r.elements) ids.push_back(e.str);
    return ids;
}

// The head every claim/take reply starts with: {-1} (paused), or
// {next_due, {next ids}, ...}. False for a malformed reply.
bool read_claim_head(const std::vector<reply>& e, claim_batch& batch) {
    if (e.empty()) return false;
    if (int_of(e[0]) == -1) {
        batch.paused = true;
        return true;
    }
    if (e.size() < 2) return false;
    batch.next_due = next_due_of(e[0]);
    batch.next = ids_of(e[1]);
    return true;
}

// Appends a job that `start` or `take` started (skipped when it was deleted meanwhile).
void add_started(claim_batch& batch, std::string id, std::int64_t token, const reply& fields,
                 const std::string& queue, millis now, millis lease_until) {
    claimed_job j;
    j.id = std::move(id);
    j.token = token;
    j.queue = queue;
    if (!decode_started(fields, j)) return;
    j.started_at = now;
    j.lease_until = lease_until;
    batch.jobs.push_back(std::move(j));
}

// The take script's KEYS and ARGV: for req.candidates (at most max_jobs of them),
// or, when `head` > 0, for the first `head` ids of the queue (the script's head mode).
std::pair<std::vector<std::string>, std::vector<std::string>> take_call(const keys& k, const broker_options& o,
                                                                        const claim_request& req,
                                                                        std::size_t max_jobs, millis now,
                                                                        std::size_t head) {
    const auto& queue = req.queue;
    std::vector<std::string> keys{k.queued(queue), k.scheduled(queue), k.active(queue),
                                  k.leases(queue), k.meta(queue),      k.marker(queue)};
    std::vector<std::string> args{std::to_string(now),
                                  k.updates_channel(),
                                  std::to_string(o.max_events),
                                  shown(queue),
                                  req.worker_id,
                                  req.validating ? "validating" : "in_progress",
                                  std::to_string(req.lease.count()),
                                  std::to_string(max_jobs)};
    if (head > 0) {
        args.emplace_back();
        args.push_back(std::to_string(head));
    } else {
        for (const auto& id : req.candidates) {
            keys.push_back(k.job(queue, id));
            args.push_back(id);
        }
    }
    return {std::move(keys), std::move(args)};
}

// BZPOPMIN's timeout for `ms` milliseconds: seconds with three decimals.
std::string block_seconds(long long ms) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%lld.%03lld", ms / 1000, ms % 1000);
    return secs;
}

// A take reply into `batch` (the jobs it started, the head it left, next_due,
// paused); `head` when the call was in head mode (the time it used ends the reply).
bool read_take(const reply& r, claim_batch& batch, const claim_request& req, millis now, bool head) {
    const auto& e = r.elements;
    if (!read_claim_head(e, batch)) return false;
    if (batch.paused) return true;
    std::size_t end = e.size();
    if (head) {
        if (end < 3) return false;
        --end;
        now = int_of(e[end]);
    }
    if ((end - 2) % 3 != 0) return false;
    const millis lease_until = now + req.lease.count();
    for (std::size_t i = 2; i + 2 < end; i += 3)
        add_started(batch, e[i].str, int_of(e[i + 1]), e[i + 2], req.queue, now, lease_until);
    return true;
}

// The field `name` of an HGETALL reply ("" when absent).
std::string_view field_of(const reply& rec, std::string_view name) {
    for (std::size_t f = 0; f + 1 < rec.elements.size(); f += 2)
        if (rec.elements[f].str == name) return rec.elements[f + 1].str;
    return {};
}

// One job a deferred start took, from its record read after the take (`rec`, an
// HGETALL reply that shows the take's pending start `st`): its attempt is the stored
// count + 1 and its start entry is still to be written (claimed_job::pending_start).
// A record a previous version wrote (no `hn`) gets its start written at once
// (`fixes`), as start_one would; a record deleted before the take (the take's HSET
// made a stub of it) is dropped with its lease (`fixes`). False when the job is
// not to run: deleted after the take (remove took the lease too) or such a stub.
bool decode_deferred(const reply& rec, std::string_view st, std::string id, std::int64_t token,
                     const claim_request& req, const keys& k, millis now, std::vector<command>& fixes,
                     claimed_job& j) {
    auto d = codec::decode_job(rec, now);
    if (!d) return false;
    if (d->created_at == 0) {
        fixes.push_back(command{"DEL", k.job(req.queue, id)});
        fixes.push_back(command{"ZREM", k.active(req.queue), id});
        fixes.push_back(command{"HDEL", k.leases(req.queue), id});
        return false;
    }
    const auto hn = field_of(rec, "hn");
    j.id = std::move(id);
    j.token = token;
    j.queue = req.queue;
    j.payload = std::move(d->payload);
    j.attempt = d->attempts;  // decode_job counts the pending start
    j.max_retries = d->max_retries;
    j.timeout = d->timeout;
    j.ttl = d->ttl;
    j.created_at = d->created_at;
    j.unique_key = std::move(d->unique_key);
    j.parents = std::move(d->parents);
    j.started_at = now;
    j.lease_until = now + req.lease.count();
    j.pending_start = codec::start_entry(st, j.attempt);
    j.history = static_cast<int>(to_ll(hn)) + 1;
    if (hn.empty()) {
        // A previous version's record (its events in its stream): the start is
        // its first history entry here, written now as start_one writes it.
        fixes.push_back(command{"HSET", k.job(req.queue, j.id), "attempts", j.attempt, "hn", 1, "h1", j.pending_start,
                                "legacy", 1, "st", ""});
        j.pending_start.clear();
    }
    return true;
}

// The job_started events of a deferred start, one job_updates message.
std::string started_message(const claim_batch& batch, const claim_request& req, millis now) {
    const std::string tail = fmt::format(R"(","queue":"{}","status":"{}","ts":{},"attempt":)", shown(req.queue),
                                         req.validating ? "validating" : "in_progress", now);
    const std::string worker = boost::json::serialize(boost::json::string_view{req.worker_id});
    std::string m = "[";
    for (const auto& j : batch.jobs) {
        if (m.size() > 1) m += ',';
        fmt::format_to(std::back_inserter(m), R"({{"type":"job_started","job_id":"{}{}{},"worker_id":{}}})", j.id,
                       tail, j.attempt, worker);
    }
    m += ']';
    return m;
}

}  // namespace

// A take of req.candidates with a deferred start (compact records): the take and
// the candidates' HGETALLs in one write, so the records come in the same round
// trip; then the job_started events, sent without waiting for their reply. A
// record read that does not show this take's pending start ran before the take
// (a NOSCRIPT retry, or a Cluster redirect that delayed the script) and is read
// again.
asio::awaitable<result<void>> broker::take_deferred(claim_request& req, millis now, std::size_t max_jobs,
                                                    claim_batch& batch) {
    const auto& k = impl_->k;
    const auto& script = scripts::take(true);
    auto [keys, args] = take_call(k, opts_, req, max_jobs, now, 0);
    std::vector<command> cmds;
    cmds.reserve(1 + req.candidates.size());
    cmds.push_back(script.evalsha_command(keys, args));
    for (const auto& id : req.candidates) cmds.push_back(command{"HGETALL", k.job(req.queue, id)});
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    if (r->size() != 1 + req.candidates.size()) co_return errc::bad_reply;
    reply taken = std::move(r->front());
    if (taken.is_error()) {
        if (taken.str.rfind("NOSCRIPT", 0) != 0) {
            impl_->log->error("script error: {}", taken.str);
            co_return errc::redis_error;
        }
        auto again = co_await run_script(conn_, script, std::move(keys), std::move(args));  // load and run
        if (!again) co_return again.error();
        taken = std::move(*again);
    }
    const auto& e = taken.elements;
    if (!read_claim_head(e, batch)) co_return errc::bad_reply;
    if (batch.paused) co_return result<void>{};
    if ((e.size() - 2) % 2 != 0) co_return errc::bad_reply;
    // The taken jobs (in candidate order) and their records.
    std::vector<std::pair<std::string, std::int64_t>> jobs;
    std::vector<reply> records;
    std::size_t at = 0;
    for (std::size_t i = 2; i + 1 < e.size(); i += 2) {
        while (at < req.candidates.size() && req.candidates[at] != e[i].str) ++at;
        if (at == req.candidates.size()) co_return errc::bad_reply;
        jobs.emplace_back(e[i].str, int_of(e[i + 1]));
        records.push_back(std::move((*r)[1 + at++]));
    }
    if (any_error(records, 0, records.size())) co_return errc::redis_error;
    // Whether a record read shows this take's start (a deleted record shows nothing to doubt).
    const std::string mine = (req.validating ? "V" : "S") + std::to_string(now) + " " + req.worker_id;
    const auto shows_take = [&mine](const reply& rec) {
        return rec.elements.empty() || field_of(rec, "st") == mine;
    };
    std::vector<std::size_t> stale;
    for (std::size_t i = 0; i < records.size(); ++i)
        if (!shows_take(records[i])) stale.push_back(i);
    if (!stale.empty()) {
        std::vector<command> reads;
        for (auto i : stale) reads.push_back(command{"HGETALL", k.job(req.queue, jobs[i].first)});
        auto rr = co_await conn_.exec_many(std::move(reads));
        if (!rr) co_return rr.error();
        if (rr->size() != stale.size() || any_error(*rr, 0, rr->size())) co_return errc::redis_error;
        for (std::size_t n = 0; n < stale.size(); ++n) records[stale[n]] = std::move((*rr)[n]);
    }
    std::vector<command> fixes;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        // Still not this take's start: the lease is no longer ours (the reaper
        // reclaimed it already); leave the job to its owner.
        if (!shows_take(records[i])) continue;
        claimed_job j;
        if (decode_deferred(records[i], mine, std::move(jobs[i].first), jobs[i].second, req, k, now, fixes, j))
            batch.jobs.push_back(std::move(j));
    }
    if (!fixes.empty()) {
        auto f = co_await conn_.exec_many(std::move(fixes));
        if (!f) co_return f.error();
    }
    if (!batch.jobs.empty()) {
        // Sent now, before the caller starts the jobs: their completions follow it.
        auto conn = conn_.shared_from_this();
        asio::co_spawn(conn->get_executor(),
                       [conn, m = command{"PUBLISH", k.updates_channel(), started_message(batch, req, now)}]()
                           -> asio::awaitable<void> { co_await conn->exec(m); },
                       asio::detached);
    }
    co_return result<void>{};
}

asio::awaitable<result<claim_batch>> broker::claim(claim_request req, millis now) {
    const auto& k = impl_->k;
    const auto& queue = req.queue;
    const std::size_t max_jobs = std::max<std::size_t>(req.max_jobs, 1);
    const millis lease_until = now + req.lease.count();
    const char* status = req.validating ? "validating" : "in_progress";
    claim_batch batch;

    if (!req.candidates.empty()) {
        if (req.candidates.size() > max_jobs) req.candidates.resize(max_jobs);
        if (opts_.compact_records) {
            auto t = co_await take_deferred(req, now, max_jobs, batch);
            if (!t) co_return t.error();
        } else {
            auto [keys, args] = take_call(k, opts_, req, max_jobs, now, 0);
            auto r = co_await run_script(conn_, scripts::take(false), std::move(keys), std::move(args));
            if (!r) co_return r.error();
            if (!read_take(*r, batch, req, now, false)) co_return errc::bad_reply;
        }
        if (batch.paused) co_return batch;
        const bool due_waiting = batch.next_due > 0 && batch.next_due <= now;
        if (!batch.jobs.empty() && !due_waiting) co_return batch;
        if (due_waiting) batch.next.clear();  // the next claim must be the full one
        if (batch.jobs.size() >= max_jobs) co_return batch;
        // Stale candidates (others took them) or due scheduled jobs: the full claim.
        req.max_jobs = max_jobs - batch.jobs.size();
    }

    std::vector<std::string> keys_v{k.queued(queue), k.scheduled(queue), k.active(queue), k.leases(queue),
                                  k.meta(queue), k.marker(queue)};
    std::vector<std::string> args_v{std::to_string(now), std::to_string(req.lease.count()),
                                  std::to_string(std::max<std::size_t>(req.max_jobs, 1))};
    auto r = co_await run_script(conn_, scripts::claim(), std::move(keys_v), std::move(args_v));
    if (!r) co_return r.error();
    const auto& e = r->elements;
    if (!read_claim_head(e, batch)) co_return errc::bad_reply;
    if (batch.paused || e.size() < 4) co_return batch;

    std::vector<std::string> keys{k.active(queue), k.leases(queue)};
    std::vector<std::string> args{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events), shown(queue),
                                  req.worker_id, status};
    std::vector<std::pair<std::string, std::int64_t>> claimed;
    for (std::size_t i = 2; i + 1 < e.size(); i += 2) {
        claimed.emplace_back(e[i].str, int_of(e[i + 1]));
        keys.push_back(k.job(queue, e[i].str));
        args.push_back(e[i].str);
        args.push_back(std::to_string(int_of(e[i + 1])));
    }
    auto s = co_await run_script(conn_, scripts::start(opts_.compact_records), std::move(keys), std::move(args));
    if (!s) co_return s.error();  // the leases run out and the reaper hands the jobs back
    const auto& started = s->elements;
    if (started.size() != claimed.size()) co_return errc::bad_reply;
    for (std::size_t i = 0; i < claimed.size(); ++i)
        add_started(batch, std::move(claimed[i].first), claimed[i].second, started[i], queue, now, lease_until);
    co_return batch;
}

asio::awaitable<result<bool>> broker::wait_for_work(redis::connection& blocking_conn, std::string queue,
                                                    std::chrono::milliseconds timeout) {
    auto w = co_await wait_for_work(blocking_conn, std::move(queue), timeout, 0);
    // result<bool> cannot be built from an error_code implicitly (it converts to bool).
    if (!w) co_return result<bool>{boost::system::in_place_error, w.error()};
    co_return result<bool>{boost::system::in_place_value, w->woken};
}

asio::awaitable<result<wake>> broker::wait_for_work(redis::connection& blocking_conn, std::string queue,
                                                    std::chrono::milliseconds timeout, std::size_t peek) {
    const auto ms = std::max<long long>(timeout.count(), 1);
    std::vector<command> cmds{command{"BZPOPMIN", impl_->k.marker(queue), block_seconds(ms)}};
    // Queued behind the blocked BZPOPMIN, the ZRANGE runs the moment it returns:
    // the wake-up and the candidates arrive in one round trip.
    if (peek > 0) cmds.push_back(command{"ZRANGE", impl_->k.queued(queue), 0, static_cast<long long>(peek) - 1});
    auto r = co_await blocking_conn.exec_many(std::move(cmds), std::chrono::milliseconds{ms + 5000});
    if (!r) co_return r.error();
    for (const auto& x : *r)
        if (x.is_error()) co_return errc::redis_error;
    wake w;
    w.woken = !r->front().is_nil();
    if (peek > 0 && r->size() > 1) w.ready = ids_of((*r)[1]);
    co_return w;
}

asio::awaitable<result<wake>> broker::wait_and_take(redis::connection& blocking_conn, claim_request req,
                                                    std::chrono::milliseconds timeout, std::size_t take,
                                                    millis now) {
    const auto ms = std::max<long long>(timeout.count(), 1);
    const auto& script = scripts::take(opts_.compact_records);
    auto [keys, args] = take_call(impl_->k, opts_, req, std::max<std::size_t>(req.max_jobs, 1), now, take);
    // Queued behind the blocked BZPOPMIN, the take runs the moment it returns.
    std::vector<command> cmds{command{"BZPOPMIN", impl_->k.marker(req.queue), block_seconds(ms)},
                              script.evalsha_command(keys, args)};
    auto r = co_await blocking_conn.exec_many(std::move(cmds), std::chrono::milliseconds{ms + 5000});
    if (!r) co_return r.error();
    if (r->size() != 2 || r->front().is_error()) co_return errc::redis_error;
    wake w;
    w.woken = !r->front().is_nil();
    const auto& taken = (*r)[1];
    if (taken.is_error()) {
        // NOSCRIPT (a restarted Redis) or a refused write: the caller's next claim
        // loads the script, or reports the error.
        if (taken.str.rfind("NOSCRIPT", 0) != 0) log::get("store")->warn("take on wake-up failed: {}", taken.str);
        w.woken = true;
        co_return w;
    }
    claim_batch batch;
    if (!read_take(taken, batch, req, now, true)) co_return errc::bad_reply;
    w.paused = batch.paused;
    w.next_due = batch.next_due;
    w.ready = std::move(batch.next);
    w.jobs = std::move(batch.jobs);
    co_return w;
}

asio::awaitable<result<std::vector<result<void>>>> broker::complete(std::string queue, std::vector<completion> done,
                                                                    millis now) {
    const auto& k = impl_->k;
    std::vector<result<void>> out;
    out.reserve(done.size());
    bool children = false;
    for (std::size_t start = 0; start < done.size(); start += batch_limit) {
        std::size_t end = std::min(done.size(), start + batch_limit);
        std::vector<std::string> keys{k.active(queue), k.leases(queue), done_index(queue),
                                      k.meta(queue),   k.unique(queue), k.cancels(queue)};
        std::vector<std::string> args{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events),
                                      shown(queue), std::to_string(opts_.inline_result_bytes)};
        keys.reserve(keys.size() + (end - start));
        std::vector<std::string> apart;  // result keys, after the job keys (the script's contract)
        args.reserve(args.size() + 1 + 9 * (end - start));
        args.emplace_back();  // the batch's job_updates message (the script's ARGV[6])
        std::string message = "[";
        const std::string ts = std::to_string(now);
        for (std::size_t i = start; i < end; ++i) {
            auto& c = done[i];
            keys.push_back(k.job(queue, c.id));
            // The history entry and the event are built here, where the times are
            // numbers already (the script only stores them). Queue names and ids
            // need no JSON escaping (their characters are restricted).
            const millis started = c.started_at ? c.started_at : now;
            const millis created = c.created_at ? c.created_at : started;
            std::string timing = fmt::format(R"("ts":{},"duration_ms":{},"wait_ms":{})", ts,
                                             std::max<millis>(0, now - started), std::max<millis>(0, started - created));
            args.push_back(c.id);
            args.push_back(std::to_string(c.token));
            args.push_back(codec::encode_result(c.result, opts_.compress_threshold));
            const std::string& stored = args.back();
            if (stored.size() > opts_.inline_result_bytes) apart.push_back(k.result(queue, c.id));
            // The size only when the stored form is not the result itself (compressed).
            std::string size = stored == c.result ? std::string{} : std::to_string(c.result.size());
            const auto ttl = std::max<long long>(1, c.ttl.count());
            args.push_back(ttl == default_result_ttl.count() ? std::string{} : std::to_string(ttl));
            args.push_back(std::move(size));
            args.push_back(std::move(c.unique_key));
            args.push_back(std::to_string(c.history + 1));
            args.push_back(codec::completed_entry(now, std::max<millis>(0, now - started),
                                                  std::max<millis>(0, started - created), opts_.compact_records));
            if (i > start) message += ',';
            // The script finds a job's event by this head when it cuts out fenced-out ones.
            fmt::format_to(std::back_inserter(message),
                           R"({{"type":"job_completed","job_id":"{}","queue":"{}","status":"completed",{}}})", c.id,
                           shown(queue), timing);
            args.push_back(std::move(c.pending_start));
        }
        message += ']';
        args[5] = std::move(message);
        for (auto& key : apart) keys.push_back(std::move(key));
        auto r = co_await run_script_after(conn_, {}, scripts::complete(opts_.compact_records), std::move(keys), std::move(args),
                                           replication_for(opts_, queue));
        if (!r) co_return r.error();
        // One entry per job, then (when children were waiting for them) a count.
        const std::size_t n = end - start;
        if (r->elements.size() != n && r->elements.size() != n + 1) co_return errc::bad_reply;
        for (std::size_t i = 0; i < n; ++i)
            out.push_back(int_of(r->elements[i]) == 1 ? result<void>{} : result<void>{errc::lease_lost});
        if (r->elements.size() == n + 1) children = true;
    }
    if (children) co_await deliver(queue, now);
    co_return out;
}

// resolve_pending after a transition that made outcomes to deliver; a failure is
// logged (maintenance delivers them later).
asio::awaitable<void> broker::deliver(const std::string& queue, millis now) {
    auto d = co_await resolve_pending(queue, now);
    if (!d) impl_->log->warn("queue {}: delivering parents' outcomes: {}", shown(queue), d.error().message());
}

asio::awaitable<result<std::vector<fail_outcome>>> broker::fail(std::string queue, std::vector<failure> failed,
                                                                millis now) {
    const auto& k = impl_->k;
    std::vector<std::string> keys{k.active(queue), k.leases(queue), k.scheduled(queue),
                                  k.failed(queue), k.meta(queue),   k.unique(queue),
                                  k.marker(queue), k.cancels(queue), k.cancelled(queue)};
    std::vector<std::string> args{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events), shown(queue)};
    for (auto& f : failed) {
        keys.push_back(k.job(queue, f.id));
        args.push_back(f.id);
        args.push_back(std::to_string(f.token));
        if (f.error.size() > 4096) f.error.resize(4096);
        args.push_back(std::move(f.error));
        args.push_back(f.retryable ? "1" : "0");
        args.push_back(std::to_string(f.backoff.count()));
    }
    const std::size_t n = failed.size();
    auto r = co_await run_script(conn_, scripts::fail(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    std::vector<fail_outcome> out;
    for (std::size_t i = 0; i < std::min(n, r->elements.size()); ++i) {
        switch (int_of(r->elements[i])) {
            case 1: out.push_back(fail_outcome::retrying); break;
            case 2:
            case 3: out.push_back(fail_outcome::failed); break;
            default: out.push_back(fail_outcome::lease_lost); break;
        }
    }
    if (r->elements.size() > n) co_await deliver(queue, now);  // children waited for failed jobs
    co_return out;
}

asio::awaitable<result<void>> broker::release(std::string queue, std::vector<lease_ref> leases, millis now) {
    if (leases.empty()) co_return result<void>{};
    const auto& k = impl_->k;
    std::vector<std::string> keys{k.active(queue),  k.leases(queue),    k.queued(queue), k.marker(queue),
                                  k.cancels(queue), k.cancelled(queue), k.unique(queue), k.meta(queue)};
    std::vector<std::string> args{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events), shown(queue)};
    for (const auto& l : leases) {
        keys.push_back(k.job(queue, l.id));
        args.push_back(l.id);
        args.push_back(std::to_string(l.token));
    }
    auto r = co_await run_script(conn_, scripts::release(), std::move(keys), std::move(args));
    if (!r) co_return r.error();
    co_return result<void>{};
}

asio::awaitable<result<extend_outcome>> broker::extend_leases(std::string queue, std::vector<lease_ref> leases,
                                                              std::chrono::milliseconds lease, millis now) {
    extend_outcome out;
    if (leases.empty()) co_return out;
    const auto& k = impl_->k;
    std::vector<std::string> args{std::to_string(now + lease.count())};
    for (const auto& l : leases) {
        args.push_back(l.id);
        args.push_back(std::to_string(l.token));
    }
    std::vector<std::string> keys_v{k.active(queue), k.leases(queue), k.cancels(queue)};
    auto r = co_await run_script(conn_, scripts::extend(), std::move(keys_v), std::move(args));
    if (!r) co_return r.error();
    if (r->elements.size() != 2) co_return errc::bad_reply;
    out.lost = string_list(r->elements[0]);
    out.cancelled = string_list(r->elements[1]);
    co_return out;
}

asio::awaitable<result<void>> broker::progress(std::string queue, lease_ref lease, int percent, std::string message,
                                               millis now) {
    const auto& k = impl_->k;
    percent = std::clamp(percent, 0, 100);
    if (message.size() > 1024) message.resize(1024);
    std::vector<std::string> keys_v{k.leases(queue), k.job(queue, lease.id), k.progress(queue, lease.id)};
    std::vector<std::string> args_v{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events), shown(queue),
                                  lease.id, std::to_string(lease.token), std::to_string(percent), std::move(message)};
    auto r = co_await run_script(conn_, scripts::progress(), std::move(keys_v), std::move(args_v));
    if (!r) co_return r.error();
    if (int_of(*r) != 1) co_return errc::lease_lost;
    co_return result<void>{};
}

asio::awaitable<result<void>> broker::mark_running(std::string queue, lease_ref lease, millis now) {
    const auto& k = impl_->k;
    std::vector<std::string> keys_v{k.leases(queue), k.job(queue, lease.id)};
    std::vector<std::string> args_v{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events), shown(queue),
                                  lease.id, std::to_string(lease.token)};
    auto r = co_await run_script(conn_, scripts::mark_running(), std::move(keys_v), std::move(args_v));
    if (!r) co_return r.error();
    if (int_of(*r) != 1) co_return errc::lease_lost;
    co_return result<void>{};
}

asio::awaitable<result<void>> broker::register_worker(worker_info w, std::chrono::seconds ttl) {
    const auto& k = impl_->k;
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) {
            if (!s.empty()) s += ',';
            s += x;
        }
        return s;
    };
    std::vector<command> cmds;
    cmds.push_back(command{"HSET",        k.worker(w.id), "id",        w.id,          "host",
                           w.host,        "pid",          w.pid,       "queues",      join(w.queues),
                           "concurrency", w.concurrency,  "cpu_cores", w.cpu_cores,   "ram_bytes",
                           w.ram_bytes,   "version",      w.version,   "started_at",  w.started_at,
                           "last_heartbeat", w.last_heartbeat, "running", join(w.running)});
    cmds.push_back(command{"PEXPIRE", k.worker(w.id), std::chrono::milliseconds{ttl}.count()});
    cmds.push_back(command{"ZADD", k.workers(), w.last_heartbeat, w.id});
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    co_return result<void>{};
}

asio::awaitable<result<void>> broker::unregister_worker(std::string worker_id) {
    std::vector<command> cmds;
    cmds.push_back(command{"DEL", impl_->k.worker(worker_id)});
    cmds.push_back(command{"ZREM", impl_->k.workers(), worker_id});
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    co_return result<void>{};
}

asio::awaitable<result<std::vector<worker_info>>> broker::workers() {
    const auto& k = impl_->k;
    auto ids = co_await run_cmd(conn_, command{"ZRANGE", k.workers(), 0, -1});
    if (!ids) co_return ids.error();
    std::vector<worker_info> out;
    auto names = string_list(*ids);
    if (names.empty()) co_return out;
    std::vector<command> cmds;
    for (const auto& id : names) cmds.push_back(command{"HGETALL", k.worker(id)});
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    auto split = [](const std::string& s) {
        std::vector<std::string> v;
        std::size_t p = 0;
        while (p < s.size()) {
            auto c = s.find(',', p);
            if (c == std::string::npos) c = s.size();
            if (c > p) v.push_back(s.substr(p, c - p));
            p = c + 1;
        }
        return v;
    };
    command gone{"ZREM", k.workers()};
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto& f = (*r)[i].elements;
        if (f.empty()) {
            gone.arg(names[i]);  // its heartbeat record expired: the worker is dead
            continue;
        }
        worker_info w;
        for (std::size_t m = 0; m + 1 < f.size(); m += 2) {
            const auto& key = f[m].str;
            const auto& v = f[m + 1].str;
            if (key == "id") w.id = v;
            else if (key == "host") w.host = v;
            else if (key == "pid") w.pid = static_cast<int>(to_ll(v));
            else if (key == "queues") w.queues = split(v);
            else if (key == "concurrency") w.concurrency = static_cast<int>(to_ll(v));
            else if (key == "cpu_cores") w.cpu_cores = static_cast<int>(to_ll(v));
            else if (key == "ram_bytes") w.ram_bytes = to_ll(v);
            else if (key == "version") w.version = v;
            else if (key == "started_at") w.started_at = to_ll(v);
            else if (key == "last_heartbeat") w.last_heartbeat = to_ll(v);
            else if (key == "running") w.running = split(v);
        }
        out.push_back(std::move(w));
    }
    if (gone.args().size() > 2) co_await conn_.exec(std::move(gone));
    co_return out;
}

// ---------------------------------------------------------------- maintenance

namespace {

// Candidate ids of `set` with score <= max (or < max when exclusive), oldest first.
asio::awaitable<result<std::vector<std::string>>> due_ids(redis::connection& conn, std::string set, millis max,
                                                          bool exclusive, std::size_t limit) {
    std::string bound = (exclusive ? "(" : "") + std::to_string(max);
    auto r = co_await run_cmd(conn, command{"ZRANGEBYSCORE", set, "-inf", bound, "LIMIT", 0, limit});
    if (!r) co_return r.error();
    co_return string_list(*r);
}

}  // namespace

asio::awaitable<result<std::size_t>> broker::promote_due(std::string queue, millis now) {
    const auto& k = impl_->k;
    std::size_t total = 0;
    for (;;) {
        auto ids = co_await due_ids(conn_, k.scheduled(queue), now, false, 200);
        if (!ids) co_return ids.error();
        if (ids->empty()) break;
        std::vector<std::string> keys{k.scheduled(queue), k.queued(queue), k.marker(queue)};
        std::vector<std::string> args{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events),
                                      shown(queue)};
        for (auto& id : *ids) {
            keys.push_back(k.job(queue, id));
            args.push_back(std::move(id));
        }
        auto r = co_await run_script(conn_, scripts::promote(), std::move(keys), std::move(args));
        if (!r) co_return r.error();
        total += static_cast<std::size_t>(int_of(*r));
        if (ids->size() < 200) break;
    }
    co_return total;
}

asio::awaitable<result<std::size_t>> broker::reclaim_expired(std::string queue, millis now) {
    const auto& k = impl_->k;
    std::size_t total = 0;
    for (;;) {
        auto ids = co_await due_ids(conn_, k.active(queue), now, false, 200);
        if (!ids) co_return ids.error();
        if (ids->empty()) break;
        std::vector<std::string> keys{k.active(queue), k.leases(queue), k.queued(queue),
                                      k.failed(queue), k.meta(queue),   k.unique(queue),
                                      k.marker(queue), k.cancels(queue), k.cancelled(queue)};
        std::vector<std::string> args{std::to_string(now), k.updates_channel(), std::to_string(opts_.max_events),
                                      shown(queue)};
        for (auto& id : *ids) {
            keys.push_back(k.job(queue, id));
            args.push_back(std::move(id));
        }
        auto r = co_await run_script(conn_, scripts::reclaim(), std::move(keys), std::move(args));
        if (!r) co_return r.error();
        auto n = static_cast<std::size_t>(int_of(*r));
        total += n;
        if (n > 0) impl_->log->warn("queue {}: reclaimed {} job(s) whose lease expired", queue, n);
        if (ids->size() < 200) break;
    }
    co_return total;
}

asio::awaitable<result<std::size_t>> broker::trim(std::string queue, millis now) {
    const auto& k = impl_->k;
    const millis cutoff = now - std::chrono::milliseconds{opts_.retention}.count();
    std::size_t total = 0;
    for (const auto& set : {k.completed(queue), k.failed(queue), k.cancelled(queue)}) {
        for (;;) {
            auto ids = co_await due_ids(conn_, set, cutoff, true, 200);
            if (!ids) co_return ids.error();
            if (ids->empty()) break;
            std::vector<std::string> keys{k.completed(queue), k.failed(queue), k.cancelled(queue), k.all(queue)};
            std::vector<std::string> args{std::to_string(cutoff)};
            command unindex{"HDEL", k.ids()};
            for (const auto& id : *ids) {
                keys.push_back(k.job(queue, id));
                keys.push_back(k.progress(queue, id));
                keys.push_back(k.result(queue, id));
                keys.push_back(k.events(queue, id));
                args.push_back(id);
                unindex.arg(id);
            }
            auto r = co_await run_script(conn_, scripts::purge(), std::move(keys), std::move(args));
            if (!r) co_return r.error();
            auto u = co_await run_cmd(conn_, std::move(unindex));
            if (!u) co_return u.error();
            total += static_cast<std::size_t>(int_of(*r));
            if (ids->size() < 200) break;
        }
    }
    // Completed jobs indexed in `done`: its entries are stamped with their completion
    // time, so those before the cutoff hold only jobs past retention.
    auto done = co_await purge_done(queue, job_index::before(cutoff), "");
    if (!done) co_return done.error();
    total += *done;
    // `jobs` entries an hour older than retention leave the stream (their live jobs
    // for `all`); younger ones before the cutoff go once all their jobs have.
    auto aged = co_await age_jobs(queue, cutoff - 3'600'000);
    if (!aged) co_return aged.error();
    auto dropped = co_await drop_gone_entries(queue, cutoff);
    if (!dropped) co_return dropped.error();
    co_return total;
}

// ---------------------------------------------------------------- dashboard

namespace {

std::vector<std::string> chunk_of(const std::vector<std::string>& ids, std::size_t from, std::size_t n) {
    auto end = std::min(ids.size(), from + n);
    return std::vector<std::string>(ids.begin() + static_cast<std::ptrdiff_t>(from),
                                    ids.begin() + static_cast<std::ptrdiff_t>(end));
}

}  // namespace

asio::awaitable<result<std::size_t>> broker::record_history(millis bucket, millis keep_after) {
    const auto& k = impl_->k;
    auto names = co_await queue_names();
    if (!names) co_return names.error();
    if (names->empty()) co_return std::size_t{0};
    std::vector<command> reads;
    for (const auto& q : *names) {
        reads.push_back(command{"HMGET", k.meta(q), "submitted", "completed", "failed", "retried"});
        reads.push_back(command{"HKEYS", k.history(q)});
    }
    auto r = co_await conn_.exec_many(std::move(reads));
    if (!r) co_return r.error();
    const millis keep_for = std::max<millis>(bucket - keep_after, 60'000);
    std::vector<command> writes;
    for (std::size_t i = 0; i < names->size(); ++i) {
        const auto& q = (*names)[i];
        const auto& m = (*r)[2 * i].elements;
        if (m.size() != 4) co_return errc::bad_reply;
        auto field = std::to_string(bucket);
        auto value =
            fmt::format("{} {} {} {}", to_ll(m[0].str), to_ll(m[1].str), to_ll(m[2].str), to_ll(m[3].str));
        writes.push_back(command{"HSETNX", k.history(q), field, value});
        // A queue nobody uses any more loses its history after twice the window.
        writes.push_back(command{"PEXPIRE", k.history(q), 2 * keep_for});
        command old{"HDEL", k.history(q)};
        for (const auto& f : (*r)[2 * i + 1].elements)
            if (to_ll(f.str) < keep_after) old.arg(f.str);
        if (old.args().size() > 2) writes.push_back(std::move(old));
    }
    auto w = co_await conn_.exec_many(std::move(writes));
    if (!w) co_return w.error();
    for (const auto& e : *w)
        if (e.is_error()) {
            impl_->log->error("history: {}", e.str);
            co_return errc::redis_error;
        }
    co_return names->size();
}

asio::awaitable<result<std::vector<history_point>>> broker::history(std::string queue, millis since,
                                                                    millis now) {
    const auto& k = impl_->k;
    auto parts = co_await partitions_of(queue);
    if (!parts) co_return parts.error();
    std::vector<history_point> out;
    if (parts->empty()) co_return out;
    std::vector<command> cmds;
    for (const auto& p : *parts) {
        cmds.push_back(command{"HGETALL", k.history(p)});
        cmds.push_back(command{"HMGET", k.meta(p), "submitted", "completed", "failed", "retried"});
    }
    auto r = co_await conn_.exec_many(std::move(cmds));
    if (!r) co_return r.error();
    std::map<millis, history_point> buckets;
    history_point current{now};
    for (std::size_t i = 0; i < parts->size(); ++i) {
        const auto& h = (*r)[2 * i].elements;
        for (std::size_t f = 0; f + 1 < h.size(); f += 2) {
            millis ts = to_ll(h[f].str);
            if (ts < since) continue;
            long long v[4] = {0, 0, 0, 0};
            std::string_view text = h[f + 1].str;
            for (int n = 0; n < 4 && !text.empty(); ++n) {
                auto sp = text.find(' ');
                v[n] = to_ll(text.substr(0, sp));
                text = sp == std::string_view::npos ? std::string_view{} : text.substr(sp + 1);
            }
            auto& b = buckets[ts];
            b.ts = ts;
            b.submitted += v[0];
            b.completed += v[1];
            b.failed += v[2];
            b.retried += v[3];
        }
        const auto& m = (*r)[2 * i + 1].elements;
        if (m.size() != 4) co_return errc::bad_reply;
        current.submitted += to_ll(m[0].str);
        current.completed += to_ll(m[1].str);
        current.failed += to_ll(m[2].str);
        current.retried += to_ll(m[3].str);
    }
    for (auto& [ts, b] : buckets)
        if (ts <= now) out.push_back(b);
    out.push_back(current);
    co_return out;
}

asio::awaitable<result<std::vector<job_timing>>> broker::recent_timings(std::string queue, std::size_t n) {
    const auto& k = impl_->k;
    auto parts = co_await partitions_of(queue);
    if (!parts) co_return parts.error();
    std::vector<job_timing> out;
    if (parts->empty() || n == 0) co_return out;
    // The newest completions of each partition: its `done` stream's, and its `completed` set's.
    std::vector<command> heads;
    for (const auto& p : *parts) heads.push_back(command{"ZREVRANGE", k.completed(p), 0, n - 1});
    auto h = co_await conn_.exec_many(std::move(heads));
    if (!h) co_return h.error();
    std::vector<command> reads;
    for (std::size_t i = 0; i < parts->size(); ++i) {
        auto s = co_await job_index::newest(conn_, k.done((*parts)[i]), std::nullopt, n);
        if (!s) co_return s.error();
        for (const auto& p : s->items) reads.push_back(command{"HGETALL", k.job((*parts)[i], p.id)});
        for (const auto& id : (*h)[i].elements)
            reads.push_back(command{"HGETALL", k.job((*parts)[i], id.str)});
    }
    if (reads.empty()) co_return out;
    auto r = co_await conn_.exec_many(std::move(reads));
    if (!r) co_return r.error();
    std::vector<std::pair<millis, job_timing>> all;
    const millis now = opts_.clock->now();
    for (const auto& rec : *r) {
        auto j = codec::decode_job(rec, now);
        if (!j) continue;  // deleted meanwhile
        if (j->started_at <= 0 || j->completed_at <= 0) continue;
        millis due = j->scheduled_at > 0 ? j->scheduled_at : j->created_at;
        all.emplace_back(j->completed_at, job_timing{std::max<millis>(0, j->started_at - due),
                                                     std::max<millis>(0, j->completed_at - j->started_at)});
    }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    if (all.size() > n) all.resize(n);
    for (auto& [t, timing] : all) out.push_back(timing);
    co_return out;
}

asio::awaitable<result<std::size_t>> broker::retry_dead(std::string queue, std::string tenant, millis now) {
    const auto& k = impl_->k;
    auto parts = co_await partitions_of(queue);
    if (!parts) co_return parts.error();
    std::size_t total = 0;
    for (const auto& p : *parts) {
        // The dead-letter set as it is now; jobs that die meanwhile wait for the next call.
        auto ids = co_await run_cmd(conn_, command{"ZRANGE", k.failed(p), 0, -1});
        if (!ids) co_return ids.error();
        auto all = string_list(*ids);
        for (std::size_t from = 0; from < all.size(); from += 200) {
            std::vector<std::string> keys_v{k.failed(p), k.queued(p), k.marker(p), k.unique(p)};
            std::vector<std::string> args_v{std::to_string(now), k.updates_channel(),
                                            std::to_string(opts_.max_events), p, tenant};
            for (auto& id : chunk_of(all, from, 200)) {
                keys_v.push_back(k.job(p, id));
                keys_v.push_back(k.result(p, id));
                args_v.push_back(std::move(id));
            }
            auto r = co_await run_script(conn_, scripts::retry_dead(), std::move(keys_v), std::move(args_v));
            if (!r) co_return r.error();
            total += static_cast<std::size_t>(int_of(*r));
        }
    }
    co_return total;
}

asio::awaitable<result<std::size_t>> broker::purge_completed(std::string queue, std::string tenant) {
    const auto& k = impl_->k;
    auto parts = co_await partitions_of(queue);
    if (!parts) co_return parts.error();
    std::size_t total = 0;
    for (const auto& p : *parts) {
        auto ids = co_await run_cmd(conn_, command{"ZRANGE", k.completed(p), 0, -1});
        if (!ids) co_return ids.error();
        auto all = string_list(*ids);
        for (std::size_t from = 0; from < all.size(); from += 200) {
            auto n = co_await delete_completed(p, tenant, true, {}, chunk_of(all, from, 200));
            if (!n) co_return n.error();
            total += *n;
        }
        auto done = co_await purge_done(p, "+", tenant);
        if (!done) co_return done.error();
        total += *done;
    }
    co_return total;
}

asio::awaitable<result<std::size_t>> broker::delete_completed(const std::string& queue, const std::string& tenant,
                                                              bool from_set, std::vector<std::string> entries,
                                                              std::vector<std::string> ids) {
    const auto& k = impl_->k;
    std::vector<std::string> keys_v{k.completed(queue), k.all(queue), k.done(queue), k.meta(queue)};
    std::vector<std::string> args_v{tenant, from_set ? "set" : "stream", std::to_string(entries.size())};
    for (auto& e : entries) args_v.push_back(std::move(e));
    for (auto& id : ids) {
        keys_v.push_back(k.job(queue, id));
        keys_v.push_back(k.progress(queue, id));
        keys_v.push_back(k.result(queue, id));
        keys_v.push_back(k.events(queue, id));
        args_v.push_back(std::move(id));
    }
    auto r = co_await run_script(conn_, scripts::purge_completed(), std::move(keys_v), std::move(args_v));
    if (!r) co_return r.error();
    auto gone = string_list(*r);
    if (gone.empty()) co_return std::size_t{0};
    // Untagged ids (an earlier version's) are resolved through `<p>:ids`: drop theirs.
    command unindex{"HDEL", k.ids()};
    for (const auto& id : gone) unindex.arg(id);
    auto u = co_await run_cmd(conn_, std::move(unindex));
    if (!u) co_return u.error();
    co_return gone.size();
}

asio::awaitable<result<std::size_t>> broker::purge_done(const std::string& queue, std::string until,
                                                        const std::string& tenant) {
    const auto& k = impl_->k;
    std::size_t total = 0;
    // 200 jobs per script call; the last call of a read deletes its entries (unless
    // only one tenant's jobs went: the others' stay listed, and the entries go at retention).
    auto step = [&](job_index::batch b) -> asio::awaitable<result<void>> {
        if (!tenant.empty()) b.entries.clear();
        auto n = co_await delete_completed(queue, tenant, false, std::move(b.entries), std::move(b.ids));
        if (!n) co_return n.error();
        total += *n;
        co_return result<void>{};
    };
    auto w = co_await job_index::walk(conn_, k.done(queue), std::move(until), 200, step);
    if (!w) co_return w.error();
    co_return total;
}

asio::awaitable<result<std::size_t>> broker::age_jobs(const std::string& queue, millis horizon) {
    const auto& k = impl_->k;
    std::size_t kept = 0;
    // 500 jobs per script call; the last call of a read deletes its entries.
    auto step = [&](job_index::batch b) -> asio::awaitable<result<void>> {
        std::vector<std::string> keys_v{k.jobs(queue), k.all(queue)};
        std::vector<std::string> args_v{std::to_string(b.entries.size())};
        for (auto& e : b.entries) args_v.push_back(std::move(e));
        for (auto& id : b.ids) {
            keys_v.push_back(k.job(queue, id));
            args_v.push_back(std::move(id));
        }
        auto sr = co_await run_script(conn_, scripts::age_jobs(), std::move(keys_v), std::move(args_v));
        if (!sr) co_return sr.error();
        kept += static_cast<std::size_t>(int_of(*sr));
        co_return result<void>{};
    };
    auto w = co_await job_index::walk(conn_, k.jobs(queue), job_index::before(horizon), 500, step);
    if (!w) co_return w.error();
    co_return kept;
}

asio::awaitable<result<void>> broker::drop_gone_entries(const std::string& queue, millis until) {
    const auto& k = impl_->k;
    auto step = [&](std::vector<job_index::entry> got) -> asio::awaitable<result<void>> {
        std::vector<command> probes;
        for (const auto& e : got)
            for (const auto& id : e.ids) probes.push_back(command{"EXISTS", k.job(queue, id)});
        auto x = co_await conn_.exec_many(std::move(probes));
        if (!x) co_return x.error();
        // No job comes back once gone (ids are never reused): no race to guard against.
        command xdel{"XDEL", k.jobs(queue)};
        std::size_t at = 0;
        for (const auto& e : got) {
            bool live = false;
            for (std::size_t i = 0; i < e.ids.size(); ++i) live = int_of((*x)[at++]) == 1 || live;
            if (!live) xdel.arg(e.id);
        }
        if (xdel.args().size() > 2) {
            auto d = co_await run_cmd(conn_, std::move(xdel));
            if (!d) co_return d.error();
        }
        co_return result<void>{};
    };
    co_return co_await job_index::read_oldest(conn_, k.jobs(queue), job_index::before(until), step, 1000);
}

asio::awaitable<result<std::vector<job_record>>> broker::find_jobs(std::string queue, std::string text,
                                                                   std::string tenant, std::size_t scan,
                                                                   std::size_t limit) {
    const auto& k = impl_->k;
    std::vector<job_record> out;
    std::set<std::string> seen;
    if (text.empty() || limit == 0) co_return out;
    auto accept = [&](job_record j) {
        if (!queue.empty() && logical_queue(j.queue) != queue) return;
        if (!tenant.empty() && j.tenant != tenant) return;
        if (!seen.insert(j.id).second) return;
        out.push_back(std::move(j));
    };
    if (is_valid_job_id(text)) {
        auto j = co_await get(text);
        if (j)
            accept(std::move(*j));
        else if (j.error() != errc::job_not_found)
            co_return j.error();
    }
    result<std::vector<std::string>> names = std::vector<std::string>{};
    if (queue.empty())
        names = co_await queue_names();
    else
        names = co_await partitions_of(queue);
    if (!names) co_return names.error();
    if (names->empty()) co_return out;
    const std::string stored_key = tenant.empty() ? text : tenant + ":" + text;
    std::vector<command> heads;
    for (const auto& p : *names) {
        heads.push_back(command{"HGET", k.unique(p), stored_key});
        heads.push_back(command{"ZRANGE", k.all(p), "+", "-", "BYLEX", "REV", "LIMIT", 0, scan});
    }
    auto h = co_await conn_.exec_many(std::move(heads));
    if (!h) co_return h.error();
    // Candidates: (physical queue, id); the unique-key holders first.
    std::vector<std::pair<std::string, std::string>> wanted;
    std::vector<std::pair<std::string, std::string>> scanned;
    for (std::size_t i = 0; i < names->size(); ++i) {
        const auto& holder = (*h)[2 * i];
        if (!holder.is_nil() && !holder.str.empty()) wanted.emplace_back((*names)[i], holder.str);
        // The newest jobs: the `jobs` stream's, then the `all` set's.
        auto s = co_await job_index::newest(conn_, k.jobs((*names)[i]), std::nullopt, scan);
        if (!s) co_return s.error();
        for (auto& p : s->items) scanned.emplace_back((*names)[i], std::move(p.id));
        const auto& older = (*h)[2 * i + 1].elements;
        for (std::size_t j = 0; j < older.size() && j + s->items.size() < scan; ++j)
            scanned.emplace_back((*names)[i], older[j].str);
    }
    if (!scanned.empty()) {
        std::vector<command> reads;
        for (const auto& [p, id] : scanned) reads.push_back(command{"HGET", k.job(p, id), "unique_key"});
        auto r = co_await conn_.exec_many(std::move(reads));
        if (!r) co_return r.error();
        std::string lowered = text;
        for (auto& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (std::size_t i = 0; i < scanned.size(); ++i) {
            std::string_view uk = (*r)[i].str;
            if (!tenant.empty() && uk.substr(0, tenant.size() + 1) == tenant + ":")
                uk.remove_prefix(tenant.size() + 1);
            bool hit = scanned[i].second.rfind(lowered, 0) == 0 ||
                       (!uk.empty() && uk.find(text) != std::string_view::npos);
            if (hit) wanted.push_back(scanned[i]);
        }
    }
    std::vector<command> gets;
    std::vector<std::pair<std::string, std::string>> asked;
    for (auto& w : wanted) {
        if (seen.count(w.second) || asked.size() >= limit + 8) continue;
        gets.push_back(command{"HGETALL", k.job(w.first, w.second)});
        asked.push_back(std::move(w));
    }
    if (!gets.empty()) {
        auto recs = co_await conn_.exec_many(std::move(gets));
        if (!recs) co_return recs.error();
        const millis now = opts_.clock->now();
        for (std::size_t i = 0; i < asked.size(); ++i) {
            auto j = codec::decode_job((*recs)[i], now);
            if (!j) continue;  // deleted meanwhile
            j->id = asked[i].second;
            j->queue = asked[i].first;
            accept(std::move(*j));
        }
    }
    std::sort(out.begin(), out.end(), [](const job_record& a, const job_record& b) { return a.id > b.id; });
    if (out.size() > limit) out.resize(limit);
    co_return out;
}

}  // namespace spool::store
