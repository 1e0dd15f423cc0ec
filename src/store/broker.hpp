// src/store/broker.hpp
// Every job transition as one typed call: one Lua script, one round trip each
// (claim is two: pop ids, then start them, so every script declares every key
// it touches). The broker and keys.hpp/scripts.cpp are the only code that
// knows key names; docs/keys.md is the schema and state machine.
//
// Threading: use from the executor of the connection it was given. Both the
// broker and the connection must outlive every call. Errors are values:
// spool::errc (job_not_found, lease_lost, payload_too_large, invalid_state, ...)
// or a connection error (not_connected, connection_lost, timeout).
#pragma once

#include "redis/connection.hpp"
#include "util/clock.hpp"
#include "util/asio.hpp"

#include <spool/job.hpp>
#include <spool/result.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace spool::store {

struct broker_options {
    std::string prefix = "spool";
    std::size_t max_payload_bytes = default_max_payload_bytes;
    std::size_t compress_threshold = 1024;  // results larger than this are stored zstd-compressed
    // Stored results up to this size live in the job record (one write, no key of
    // their own); larger ones get a key with the result TTL.
    std::size_t inline_result_bytes = 1024;
    std::size_t max_events = 1000;  // progress events kept per job (oldest out)
    std::chrono::seconds retention{7 * 24 * 3600};  // how long terminal job records are kept
    const spool::clock* clock = nullptr;            // read-side "now" (expiry); nullptr: system clock
    // `durability: replicated` (docs/operations.md): submits to these queues ("*":
    // every queue but `async_queues`) and their completions return once WAIT
    // confirms `replicas` replicas have the write; otherwise errc::not_replicated
    // after `replica_timeout` (the write is on the master, not known to be anywhere else).
    std::set<std::string, std::less<>> replicated_queues;
    std::set<std::string, std::less<>> async_queues;
    int replicas = 1;
    std::chrono::milliseconds replica_timeout{1000};
    // `partitions: N` (store/partitions.hpp): submits to these queues spread over
    // N physical queues; absent: 1. Reads, lists, queue figures and pause/resume
    // cover every partition Redis knows whatever this says.
    std::map<std::string, int, std::less<>> partitions;
    // Compact records (docs/keys.md); false writes the record layout of the
    // versions before them, which those versions can read: for a rolling upgrade
    // from one (docs/operations.md, "Upgrading"). Default: true unless the
    // environment says SPOOL_RECORD_FORMAT=classic.
    bool compact_records = compact_records_by_default();
    static bool compact_records_by_default();
};

// A job handed to a worker by claim(). `token` fences the attempt: complete,
// fail, progress and extend calls must present it.
struct claimed_job {
    std::string id;
    std::string queue;  // the physical queue: the partition it was claimed from
    std::string payload;  // JSON text
    std::int64_t token = 0;
    int attempt = 0;  // 1 for the first attempt
    int max_retries = 0;
    std::chrono::seconds timeout = default_job_timeout;
    std::chrono::seconds ttl = default_result_ttl;
    millis created_at = 0;
    millis started_at = 0;
    millis lease_until = 0;
    std::string unique_key;
    // Status history entries the record holds (this attempt's start included);
    // complete() appends the next one. The lease holder keeps it current
    // (mark_running adds one).
    int history = 0;
    // A deferred start (docs/keys.md, "Pending start"): this attempt's start entry,
    // not yet in the record (entry number `history`); complete() writes it with the
    // attempt count. Empty once the record has it (mark_running writes it out).
    std::string pending_start;
    std::vector<std::string> parents;  // depends_on (their results are the handler's to read)
};

struct flow_job {
    job_spec spec;
    std::vector<std::size_t> after;  // indices of earlier jobs of the same flow
};

struct flow_result {
    std::string flow_id;               // the gate's id (gone once the flow is open)
    std::vector<submit_result> jobs;   // one per flow_job, same order
};

struct claim_request {
    std::string queue;
    std::string worker_id;
    std::size_t max_jobs = 1;
    std::chrono::milliseconds lease = default_lease;
    bool validating = false;  // start jobs as `validating` instead of `in_progress`
    // Ids the caller believes are at the head of the queue (claim_batch::next or
    // wake::ready). When given, they are claimed and started in one script call;
    // when none of them is still queued, or due scheduled jobs wait, the
    // two-step claim runs as well.
    std::vector<std::string> candidates;
};

struct claim_batch {
    std::vector<claimed_job> jobs;
    bool paused = false;  // the queue is paused: nothing was claimed
    millis next_due = 0;  // earliest scheduled job (0: none), so the caller can bound its wait
    // The head of the queue left behind (up to max_jobs ids): the candidates for
    // the next claim. Empty when the queue looked empty.
    std::vector<std::string> next;
};

// What wait_for_work saw when it returned.
struct wake {
    bool woken = false;               // a submit (or resume, retry, ...) signalled work
    std::vector<std::string> ready;   // head of the queue right after the wake (candidates)
    // wait_and_take: the jobs taken on waking (leased and started), and what the
    // take saw of the queue.
    std::vector<claimed_job> jobs;
    bool paused = false;
    millis next_due = 0;
};

struct lease_ref {
    std::string id;
    std::int64_t token = 0;
};

struct completion {
    std::string id;
    std::int64_t token = 0;
    std::string result;  // JSON text
    std::chrono::seconds ttl = default_result_ttl;
    // From the claimed_job (timing of the completion event, unique key release).
    millis started_at = 0;
    millis created_at = 0;
    std::string unique_key;
    int history = 0;            // claimed_job::history
    std::string pending_start;  // claimed_job::pending_start
};

struct failure {
    std::string id;
    std::int64_t token = 0;
    std::string error;
    bool retryable = true;             // false: straight to failed (invalid input)
    std::chrono::milliseconds backoff{0};  // delay before the retry (the caller computes jitter)
};

enum class fail_outcome { retrying, failed, lease_lost };

struct extend_outcome {
    std::vector<std::string> lost;       // ids whose lease is gone (reclaimed, cancelled, deleted)
    std::vector<std::string> cancelled;  // ids with a cancel request: stop the handler
};

struct job_result {
    std::string data;  // JSON text, decompressed
};

struct list_query {
    std::string queue;                    // empty: all queues
    std::optional<job_status> status;     // empty: any
    std::string tenant;                   // empty: any tenant
    std::size_t limit = 50;
    std::string cursor;                   // opaque, from the previous page
};

struct job_page {
    std::vector<job_record> jobs;  // newest first
    std::string next_cursor;       // empty: last page
};

struct queue_info {
    std::string name;
    bool paused = false;
    std::int64_t queued = 0, scheduled = 0, active = 0, completed = 0, failed = 0, cancelled = 0, waiting = 0;
    std::int64_t submitted_total = 0, completed_total = 0, failed_total = 0, retried_total = 0;
};

struct worker_info {
    std::string id;
    std::string host;
    int pid = 0;
    std::vector<std::string> queues;
    int concurrency = 0;
    int cpu_cores = 0;
    std::int64_t ram_bytes = 0;
    std::string version;
    millis started_at = 0;
    millis last_heartbeat = 0;
    std::vector<std::string> running;  // job ids
};

// --- dashboard (docs/http-api.md, "Dashboard") ---
// A queue's cumulative counters (meta hash) as they were at the start of a bucket.
struct history_point {
    millis ts = 0;  // bucket start
    std::int64_t submitted = 0, completed = 0, failed = 0, retried = 0;
};

// Times of one recently completed job (ms).
struct job_timing {
    millis wait = 0;  // from due (created, or scheduled_at) to its last start
    millis run = 0;   // from its last start to completion
};

class broker {
public:
    broker(redis::connection& conn, broker_options opts);
    ~broker();
    const broker_options& options() const noexcept { return opts_; }

    // --- producer side ---
    // Validates (payload JSON size, priority range), then queues or schedules the
    // job. A live job with the same unique_key is returned with duplicate=true.
    asio::awaitable<result<submit_result>> submit(job_spec spec, millis now);
    // Many jobs, grouped per queue into batched scripts. One result per spec, same order.
    asio::awaitable<result<std::vector<result<submit_result>>>> submit_many(std::vector<job_spec> specs, millis now);
    // The queue's tag for job ids (allocated on first use in Redis, then cached
    // here): ids carry it, so reads need no index. 0 when every tag is taken.
    asio::awaitable<result<std::uint16_t>> queue_tag(std::string queue);
    asio::awaitable<result<job_record>> get(std::string id);
    // errc::result_not_ready while not completed, errc::result_expired once the TTL passed.
    asio::awaitable<result<job_result>> get_result(std::string id);
    // queued/scheduled → cancelled at once; in_progress → cancel requested (the worker
    // is signalled and stops); terminal → errc::invalid_state. Returns the new status.
    asio::awaitable<result<job_status>> cancel(std::string id, millis now);
    // Cancels if live, then deletes the record, result and events.
    asio::awaitable<result<void>> remove(std::string id, millis now);
    // failed or cancelled → queued (attempts reset). Otherwise errc::invalid_state.
    asio::awaitable<result<void>> retry(std::string id, millis now);
    asio::awaitable<result<job_page>> list(list_query q);
    // Events of a job after stream id `after` ("0" = from the start), at most `count`.
    asio::awaitable<result<std::vector<job_event>>> events(std::string id, std::string after, std::size_t count);
    // The tenant a job belongs to ("" for none), or job_not_found. One HGET.
    asio::awaitable<result<std::string>> owner(std::string id);
    // The tenants of many jobs in one round trip, same order; nullopt for a job that does not exist.
    asio::awaitable<result<std::vector<std::optional<std::string>>>> owners(std::vector<std::string> ids);
    // The newest event of a job (nullopt when its stream is empty or gone).
    asio::awaitable<result<std::optional<job_event>>> last_event(std::string id);

    // --- queues ---
    // Physical queue names (every partition of every queue), sorted.
    asio::awaitable<result<std::vector<std::string>>> queue_names();
    // The physical queues of one logical queue: its configured partitions and any
    // other partition Redis lists (from an earlier `partitions` setting), partition 0 first.
    asio::awaitable<result<std::vector<std::string>>> partitions_of(std::string queue);
    // Figures per logical queue, summed over its partitions (paused: any is).
    asio::awaitable<result<std::vector<queue_info>>> queues();
    // True when the queue is known to Redis (a job was submitted to it, or it was paused).
    asio::awaitable<result<bool>> queue_exists(std::string queue);
    asio::awaitable<result<void>> pause(std::string queue);
    asio::awaitable<result<void>> resume(std::string queue);

    // --- worker side ---
    // Claims up to max_jobs ready jobs (due scheduled ones first, then by priority
    // and age) and starts them: one script call when req.candidates are still
    // queued, two otherwise. Never blocks; see wait_for_work.
    asio::awaitable<result<claim_batch>> claim(claim_request req, millis now);
    // Blocks (on `blocking_conn`, which must be a connection of its own) until work
    // may be ready in `queue` or `timeout` passed. True when woken by a submit.
    asio::awaitable<result<bool>> wait_for_work(redis::connection& blocking_conn, std::string queue,
                                                std::chrono::milliseconds timeout);
    // The same, and in the same round trip reads up to `peek` ids at the head of
    // the queue once woken: candidates for the claim that follows.
    asio::awaitable<result<wake>> wait_for_work(redis::connection& blocking_conn, std::string queue,
                                                std::chrono::milliseconds timeout, std::size_t peek);
    // The same, with a take of up to `take` jobs at the head of req.queue queued
    // behind the wait: a worker woken by a submit gets its first jobs leased and
    // started (as claim() starts them) in the same round trip; wake::ready holds
    // the head left behind (up to req.max_jobs ids) for the next claim. The take
    // runs on timeouts too (and may find work then). Its `now` is Redis's clock
    // when that is later than `now` (the wake may come seconds after the call).
    asio::awaitable<result<wake>> wait_and_take(redis::connection& blocking_conn, claim_request req,
                                                std::chrono::milliseconds timeout, std::size_t take, millis now);
    // Fenced completion of many jobs of one queue; one entry per completion:
    // success, or errc::lease_lost when a newer attempt owns the job.
    asio::awaitable<result<std::vector<result<void>>>> complete(std::string queue, std::vector<completion> done,
                                                                millis now);
    asio::awaitable<result<std::vector<fail_outcome>>> fail(std::string queue, std::vector<failure> failed,
                                                            millis now);
    // A flow: jobs that depend on each other (and on existing jobs), created all or
    // none. Each job's `after` names earlier jobs of the flow (so the list is in
    // topological order); spec.depends_on holds existing job ids. Every job also
    // waits for a hidden gate, opened once all exist, so none starts before the
    // whole flow is in Redis; if one cannot be created, those made are deleted.
    asio::awaitable<result<flow_result>> submit_flow(std::vector<flow_job> jobs, millis now);
    // Delivers the outcomes of `queue`'s finished parents to their waiting children
    // (and, in turn, of children that failed or were cancelled by it). Called after
    // every transition that made some; maintenance calls it for every queue, so an
    // outcome a process died before delivering is delivered all the same.
    asio::awaitable<result<std::size_t>> resolve_pending(std::string queue, millis now);
    // Hands unfinished jobs back to the queue without counting the attempt (graceful stop).
    asio::awaitable<result<void>> release(std::string queue, std::vector<lease_ref> leases, millis now);
    asio::awaitable<result<extend_outcome>> extend_leases(std::string queue, std::vector<lease_ref> leases,
                                                          std::chrono::milliseconds lease, millis now);
    // Records progress (percent 0..100, message) and emits a progress event. Fenced.
    asio::awaitable<result<void>> progress(std::string queue, lease_ref lease, int percent, std::string message,
                                           millis now);
    // validating → in_progress.
    asio::awaitable<result<void>> mark_running(std::string queue, lease_ref lease, millis now);
    asio::awaitable<result<void>> register_worker(worker_info info, std::chrono::seconds ttl);
    asio::awaitable<result<void>> unregister_worker(std::string worker_id);
    asio::awaitable<result<std::vector<worker_info>>> workers();
    // Channel on which cancel requests for running jobs are published (payload: job id).
    std::string cancel_channel() const;
    // Channel of lifecycle events (job_created, job_started, ...), JSON payloads.
    std::string updates_channel() const;

    // --- maintenance (safe to run from several processes at once) ---
    asio::awaitable<result<std::size_t>> promote_due(std::string queue, millis now);
    // Jobs whose lease ran out: retry (attempt counted) or failed.
    asio::awaitable<result<std::size_t>> reclaim_expired(std::string queue, millis now);
    // Marks completed jobs whose result TTL passed as expired; deletes terminal
    // records older than retention.
    asio::awaitable<result<std::size_t>> trim(std::string queue, millis now);

    // --- dashboard ---
    // Writes, for every physical queue, its counters as of the bucket starting at
    // `bucket` (HSETNX: the first API replica to write a bucket wins, so all agree),
    // and drops buckets older than `keep_after`. Returns the queues written.
    asio::awaitable<result<std::size_t>> record_history(millis bucket, millis keep_after);
    // Snapshots of logical queue `queue` (partitions summed) from `since` on, oldest
    // first, then one for `now` (the counters at this moment).
    asio::awaitable<result<std::vector<history_point>>> history(std::string queue, millis since, millis now);
    // Wait and run times of the `n` most recently completed jobs of `queue` (each partition's newest).
    asio::awaitable<result<std::vector<job_timing>>> recent_timings(std::string queue, std::size_t n);
    // failed -> queued for every dead job of `queue` (of `tenant` only, when not
    // empty), in batches of one script call each; returns how many were requeued.
    asio::awaitable<result<std::size_t>> retry_dead(std::string queue, std::string tenant, millis now);
    // Deletes every completed (or expired) job of `queue` (of `tenant` only, when
    // not empty); returns how many.
    asio::awaitable<result<std::size_t>> purge_completed(std::string queue, std::string tenant);
    // Jobs of `queue` ("" = all) matching `text`: the job with that id, the live job
    // holding that unique_key, and among the newest `scan` jobs of each physical queue
    // those whose id starts with `text` or whose unique_key contains it. Newest first,
    // at most `limit`. `tenant` (when not empty) filters, and its unique keys are
    // stored as "<tenant>:<key>" (the API's scoping).
    asio::awaitable<result<std::vector<job_record>>> find_jobs(std::string queue, std::string text,
                                                               std::string tenant, std::size_t scan,
                                                               std::size_t limit);

    struct impl;

    // The index new jobs go in and the one completed jobs go in: the `jobs` and
    // `done` streams, or the `all` and `completed` sets of the classic layout.
    std::string jobs_index(const std::string& queue) const;
    std::string done_index(const std::string& queue) const;

private:
    struct submit_state;
    // One `purge_completed` call: the completed ones of `ids` (of the tenant, if one
    // is given; from the `completed` set, or from `done` entries) are deleted, then
    // the `done` entries given. Returns how many jobs went.
    asio::awaitable<result<std::size_t>> delete_completed(const std::string& queue, const std::string& tenant,
                                                          bool from_set, std::vector<std::string> entries,
                                                          std::vector<std::string> ids);
    // Completed jobs of `done` entries before `cutoff` (retention, or every one for
    // the dashboard's purge): deleted, then the entries. Returns how many jobs went.
    asio::awaitable<result<std::size_t>> purge_done(const std::string& queue, std::string until,
                                                    const std::string& tenant);
    // `jobs` entries before `horizon` leave the stream; their live jobs go to `all`.
    asio::awaitable<result<std::size_t>> age_jobs(const std::string& queue, millis horizon);
    // `jobs` entries before `until` whose jobs are all gone: deleted.
    asio::awaitable<result<void>> drop_gone_entries(const std::string& queue, millis until);
    asio::awaitable<result<void>> open_gate(std::string queue, std::string gate, millis now);
    boost::system::error_code check(job_spec& s, millis now) const;
    std::string route(const job_spec& s);
    asio::awaitable<void> deliver(const std::string& queue, millis now);
    asio::awaitable<result<void>> take_deferred(claim_request& req, millis now, std::size_t max_jobs,
                                                claim_batch& batch);
    asio::awaitable<void> submit_child(std::shared_ptr<submit_state> state, std::string queue, std::size_t i,
                                       millis now, std::string gate = {});
    std::vector<redis::command> registration(const std::string& queue, std::uint16_t tag);
    asio::awaitable<boost::system::error_code> submit_plain(const std::string& queue, submit_state& st,
                                                            const std::vector<std::size_t>& idx, std::size_t start,
                                                            std::size_t end, millis now, bool indexed,
                                                            std::vector<redis::command> pre, std::string events);
    asio::awaitable<boost::system::error_code> submit_queue(std::shared_ptr<submit_state> state, std::string queue,
                                                            std::vector<std::size_t> idx, millis now);
    asio::awaitable<result<void>> set_paused(std::string queue, bool paused);

    redis::connection& conn_;
    broker_options opts_;
    std::unique_ptr<impl> impl_;
};

}  // namespace spool::store
