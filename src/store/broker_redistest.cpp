// src/store/broker_redistest.cpp
// Every transition of the job state machine against a real redis-server.
#include "redis/subscriber.hpp"
#include "store/broker.hpp"
#include "store/calls.hpp"
#include "store/job_index.hpp"
#include "store/keys.hpp"
#include "store/partitions.hpp"
#include "testing/redis_server.hpp"
#include "testing/run_coro.hpp"
#include "util/ids.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace spool;
using namespace spool::store;
using spool::testing::run_coro;
using spool::testing::wait_until;

namespace {

// The completion a worker sends for a claimed job.
completion done_for(const claimed_job& j, std::string result, std::chrono::seconds ttl) {
    return {j.id, j.token, std::move(result), ttl, j.started_at, j.created_at, j.unique_key, j.history,
            j.pending_start};
}

class BrokerTest : public spool::testing::RedisTest {
protected:
    void SetUp() override {
        RedisTest::SetUp();
        auto opts = redis::parse_url(redis().url()).value();
        conn_ = redis::connection::create(ctx_.get_executor(), opts);
        conn_->start();
        blocking_ = redis::connection::create(ctx_.get_executor(), opts);
        blocking_->start();
        broker_options bo;
        bo.clock = &clock_;
        broker_ = std::make_unique<store::broker>(*conn_, bo);
    }
    void TearDown() override {
        if (sub_) sub_->stop();
        conn_->stop();
        blocking_->stop();
        ctx_.run_for(std::chrono::milliseconds{50});
    }
    // Subscribes to `channel`; every message received lands in updates_.
    void listen(const std::string& channel) {
        sub_ = redis::subscriber::create(ctx_.get_executor(), redis::parse_url(redis().url()).value());
        sub_->subscribe({channel});
        sub_->start();
        asio::co_spawn(
            ctx_,
            [this]() -> asio::awaitable<void> {
                for (;;) {
                    auto m = co_await sub_->receive();
                    if (!m) co_return;
                    updates_.push_back(m->payload);
                }
            },
            asio::detached);
    }

    template <class T>
    T run(asio::awaitable<T> aw) {
        return run_coro(ctx_, std::move(aw));
    }
    millis now() const { return clock_.now(); }

    std::string submit(job_spec s) {
        auto r = run(broker_->submit(std::move(s), now()));
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        return r ? r->id : std::string{};
    }
    std::string submit_to(const std::string& queue, int priority = 0, std::string payload = "{}") {
        job_spec s;
        s.queue = queue;
        s.priority = priority;
        s.payload = std::move(payload);
        return submit(std::move(s));
    }
    claim_batch claim(const std::string& queue, std::size_t n = 1,
                      std::chrono::milliseconds lease = default_lease) {
        claim_request req;
        req.queue = queue;
        req.worker_id = "w1";
        req.max_jobs = n;
        req.lease = lease;
        auto r = run(broker_->claim(req, now()));
        EXPECT_TRUE(r.has_value());
        return r ? *r : claim_batch{};
    }
    // A take of `candidates` (the worker's step once it knows the head of the
    // queue): on compact records a deferred start.
    claim_batch take(const std::string& queue, std::vector<std::string> candidates, bool validating = false,
                     std::chrono::milliseconds lease = default_lease) {
        claim_request req;
        req.queue = queue;
        req.worker_id = "w1";
        req.max_jobs = candidates.size();
        req.lease = lease;
        req.validating = validating;
        req.candidates = std::move(candidates);
        auto r = run(broker_->claim(req, now()));
        EXPECT_TRUE(r.has_value());
        return r ? *r : claim_batch{};
    }
    // The `data` of each of a job's events (status and progress) from the start.
    std::vector<std::string> event_data(const std::string& id) {
        std::vector<std::string> out;
        for (auto& e : run(broker_->events(id, "0", 100)).value()) out.push_back(e.id + " " + e.data);
        return out;
    }
    job_record get(const std::string& id) { return run(broker_->get(id)).value(); }
    std::string key(const std::string& queue, const std::string& name) {
        return keys{"spool"}.queue_key(queue, name);
    }

    // The job ids in one of a queue's index streams (`jobs`, `done`), oldest first.
    std::vector<std::string> stream_ids(const std::string& queue, const std::string& name) {
        std::vector<std::string> out;
        auto r = run(run_cmd(*conn_, redis::command{"XRANGE", key(queue, name), "-", "+"})).value();
        for (const auto& e : job_index::entries(r)) out.insert(out.end(), e.ids.begin(), e.ids.end());
        return out;
    }

    asio::io_context ctx_;
    // Starts at the real time: index stream entries carry Redis's time when the
    // caller's is too far ahead of it.
    manual_clock clock_{now_millis()};
    std::shared_ptr<redis::connection> conn_, blocking_;
    std::shared_ptr<redis::subscriber> sub_;
    std::vector<std::string> updates_;  // what listen() received
    std::unique_ptr<store::broker> broker_;
};

}  // namespace

TEST_F(BrokerTest, SubmitStoresAQueuedRecord) {
    job_spec s;
    s.queue = "solve";
    s.payload = R"({"x":1})";
    s.priority = 5;
    s.max_retries = 2;
    s.tenant = "acme";
    auto id = submit(s);
    auto j = get(id);
    EXPECT_EQ(j.id, id);
    EXPECT_EQ(j.queue, "solve");
    EXPECT_EQ(j.status, job_status::queued);
    EXPECT_EQ(j.priority, 5);
    EXPECT_EQ(j.max_retries, 2);
    EXPECT_EQ(j.tenant, "acme");
    EXPECT_EQ(j.payload, R"({"x":1})");
    EXPECT_EQ(j.created_at, now());
    EXPECT_EQ(redis().zcard(key("solve", "queued")), 1);
    // The id names its queue (a tag registered once); no index entry per job.
    EXPECT_FALSE(redis().exists("spool:ids"));
    ASSERT_TRUE(job_id_tag(id).has_value());
    EXPECT_EQ(redis().hget("spool:queue_tags", "n:" + std::to_string(*job_id_tag(id))), "solve");
    // Another broker (another process) finds the job from the id alone.
    store::broker other{*conn_, broker_options{}};
    EXPECT_EQ(run(other.get(id)).value().queue, "solve");
    auto events = run(broker_->events(id, "0", 100)).value();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_NE(events[0].data.find("\"status\":\"queued\""), std::string::npos);
}

TEST_F(BrokerTest, ALargeBatchIsCreatedWholeInTransactionsThatOverlap) {
    // 1,234 jobs: three transactions of at most 500, sent without waiting for each other.
    std::vector<job_spec> specs(1234);
    for (std::size_t i = 0; i < specs.size(); ++i) {
        specs[i].queue = "big";
        specs[i].payload = R"({"i":)" + std::to_string(i) + "}";
        specs[i].priority = static_cast<int>(i % 3);
        if (i % 10 == 0) specs[i].run_at = now() + 60'000;  // scheduled
    }
    auto r = run(broker_->submit_many(specs, now())).value();
    ASSERT_EQ(r.size(), specs.size());
    std::set<std::string> ids;
    for (std::size_t i = 0; i < r.size(); ++i) {
        ASSERT_TRUE(r[i].has_value()) << i;
        EXPECT_FALSE(r[i]->duplicate);
        EXPECT_EQ(r[i]->status, i % 10 == 0 ? job_status::scheduled : job_status::queued);
        ids.insert(r[i]->id);
    }
    EXPECT_EQ(ids.size(), specs.size());
    EXPECT_EQ(redis().zcard(key("big", "queued")), 1234 - 124);
    EXPECT_EQ(redis().zcard(key("big", "scheduled")), 124);
    EXPECT_EQ(stream_ids("big", "jobs").size(), 1234u);
    EXPECT_EQ(redis().hget(key("big", "meta"), "submitted"), "1234");
    for (std::size_t i : {std::size_t{0}, std::size_t{499}, std::size_t{500}, std::size_t{1233}}) {
        auto j = get(r[i]->id);
        EXPECT_EQ(j.payload, specs[i].payload);
        EXPECT_EQ(j.priority, specs[i].priority);
        EXPECT_EQ(j.queue, "big");
    }
    // Highest priority first, then the oldest: the queue's order holds across the batches.
    auto first = claim("big", 1);
    ASSERT_EQ(first.jobs.size(), 1u);
    EXPECT_EQ(first.jobs[0].id, r[2]->id);
}

TEST_F(BrokerTest, BatchesWithAndWithoutUniqueKeysWriteTheSameRecord) {
    // Without unique keys a batch is a plain transaction; with one, the submit script.
    job_spec a;
    a.queue = "same";
    a.payload = R"({"text":")" + std::string(150, 'p') + R"("})";  // in pieces
    a.priority = 7;
    a.max_retries = 1;
    a.tenant = "t1";
    job_spec b = a;
    b.unique_key = "k";
    job_spec c = a;
    c.run_at = now() + 5'000;
    job_spec d = c;
    d.unique_key = "k2";
    auto ra = run(broker_->submit_many({a, c}, now())).value();
    auto rb = run(broker_->submit_many({b, d}, now())).value();
    for (int i = 0; i < 2; ++i) {
        auto plain = redis().cmd({"HGETALL", key("same", "job:" + ra[i].value().id)});
        auto script = redis().cmd({"HGETALL", key("same", "job:" + rb[i].value().id)});
        std::map<std::string, std::string> pm, sm;
        for (std::size_t f = 0; f + 1 < plain.size(); f += 2) pm[plain[f]] = plain[f + 1];
        for (std::size_t f = 0; f + 1 < script.size(); f += 2) sm[script[f]] = script[f + 1];
        EXPECT_EQ(sm.erase("unique_key"), 1u);
        EXPECT_EQ(pm, sm) << i;
        EXPECT_EQ(ra[i]->status, rb[i]->status);
    }
    EXPECT_EQ(redis().zcard(key("same", "queued")), 2);
    EXPECT_EQ(redis().zcard(key("same", "scheduled")), 2);
    EXPECT_EQ(redis().hget(key("same", "meta"), "submitted"), "4");
}

TEST_F(BrokerTest, ASubmitRedisRefusesWritesNothingAndSaysSo) {
    submit_to("full");  // registered, tag known
    auto limit = [&](const char* bytes) {
        for (auto* server : redis().servers()) {
            server->cmd({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
            server->cmd({"CONFIG", "SET", "maxmemory", bytes});
        }
    };
    limit("1");  // every write is refused (OOM)
    std::vector<job_spec> specs(3);
    for (auto& sp : specs) sp.queue = "full";
    auto r = run(broker_->submit_many(specs, now()));
    limit("0");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::redis_error);
    // The transaction was aborted whole: no record, no index entry, no count.
    EXPECT_EQ(redis().zcard(key("full", "queued")), 1);
    EXPECT_EQ(stream_ids("full", "jobs").size(), 1u);
    EXPECT_EQ(redis().hget(key("full", "meta"), "submitted"), "1");
    std::size_t records = 0;
    for (auto* server : redis().servers()) records += server->cmd({"KEYS", key("full", "job:*")}).size();
    EXPECT_EQ(records, 1u);
    // Writes allowed again: the same submit goes through.
    auto again = run(broker_->submit_many(specs, now())).value();
    for (auto& x : again) EXPECT_TRUE(x.has_value());
    EXPECT_EQ(redis().zcard(key("full", "queued")), 4);
}

TEST_F(BrokerTest, JobIdsStayResolvableAfterTheTagRegistryIsLost) {
    submit_to("q");                            // registers q's tag
    redis().cmd({"DEL", "spool:queue_tags"});  // FLUSHALL, a fresh replica, ...
    redis().cmd({"DEL", "spool:queues"});
    // This broker still knows q's tag and writes it back (within a second).
    store::broker other{*conn_, broker_options{}};
    std::string id;
    ASSERT_TRUE(wait_until(
        [&] {
            id = submit_to("q");
            return run(other.get(id)).has_value();
        },
        std::chrono::seconds{3}));
    EXPECT_EQ(redis().cmd_int({"SISMEMBER", "spool:queues", "q"}), 1);
    // A queue registered afterwards gets a tag of its own, not q's again.
    auto id2 = submit_to("r");
    ASSERT_TRUE(job_id_tag(id2).has_value());
    EXPECT_NE(*job_id_tag(id2), *job_id_tag(id));
    EXPECT_EQ(run(other.get(id2)).value().queue, "r");
    EXPECT_EQ(run(other.get(id)).value().queue, "q");
}

TEST_F(BrokerTest, RejectsBadInput) {
    job_spec big;
    big.payload = "\"" + std::string(default_max_payload_bytes + 10, 'x') + "\"";
    EXPECT_EQ(run(broker_->submit(big, now())).error(), errc::payload_too_large);
    job_spec bad;
    bad.payload = "{not json";
    EXPECT_EQ(run(broker_->submit(bad, now())).error(), errc::invalid_argument);
    job_spec q;
    q.queue = "a}b";
    EXPECT_EQ(run(broker_->submit(q, now())).error(), errc::invalid_argument);
    EXPECT_EQ(run(broker_->get("not-an-id")).error(), errc::job_not_found);
    EXPECT_EQ(run(broker_->get("0193a6b2-0000-7000-8000-000000000000")).error(), errc::job_not_found);
}

TEST_F(BrokerTest, ClaimRunsHigherPriorityFirstAndFifoWithin) {
    auto low = submit_to("q", -10);
    auto a = submit_to("q", 0);
    clock_.advance(std::chrono::milliseconds{1});
    auto b = submit_to("q", 0);
    auto high = submit_to("q", 10);
    auto c = submit_to("q", 0);  // same ms as b: id order keeps FIFO
    std::vector<std::string> order;
    for (int i = 0; i < 5; ++i) {
        auto batch = claim("q");
        ASSERT_EQ(batch.jobs.size(), 1u);
        order.push_back(batch.jobs[0].id);
    }
    EXPECT_EQ(order, (std::vector<std::string>{high, a, b, c, low}));
    EXPECT_TRUE(claim("q").jobs.empty());
}

TEST_F(BrokerTest, ClaimTakesABatchAndStartsEveryJob) {
    std::set<std::string> ids;
    for (int i = 0; i < 10; ++i) ids.insert(submit_to("q", 0, "{\"i\":" + std::to_string(i) + "}"));
    auto batch = claim("q", 4);
    ASSERT_EQ(batch.jobs.size(), 4u);
    std::set<std::int64_t> tokens;
    for (const auto& j : batch.jobs) {
        EXPECT_TRUE(ids.count(j.id));
        EXPECT_EQ(j.attempt, 1);
        EXPECT_NE(j.payload.find("\"i\""), std::string::npos);
        tokens.insert(j.token);
        auto rec = get(j.id);
        EXPECT_EQ(rec.status, job_status::in_progress);
        EXPECT_EQ(rec.worker_id, "w1");
        EXPECT_EQ(rec.started_at, now());
    }
    EXPECT_EQ(tokens.size(), 4u);
    EXPECT_EQ(redis().leased(key("q", "active")), 4);
    EXPECT_EQ(redis().zcard(key("q", "queued")), 6);
}

TEST_F(BrokerTest, CompleteStoresTheResultAndLeavesActive) {
    auto id = submit_to("q");
    auto job = claim("q").jobs.at(0);
    std::vector<completion> done{done_for(job, R"({"ok":true})", std::chrono::seconds{60})};
    auto r = run(broker_->complete("q", done, now())).value();
    ASSERT_TRUE(r.at(0).has_value());
    auto rec = get(id);
    EXPECT_EQ(rec.status, job_status::completed);
    EXPECT_TRUE(rec.result_available);
    EXPECT_EQ(rec.result_size_bytes, 11u);
    EXPECT_EQ(rec.progress, 100);
    EXPECT_EQ(run(broker_->get_result(id)).value().data, R"({"ok":true})");
    EXPECT_EQ(redis().leased(key("q", "active")), 0);
    EXPECT_EQ(redis().lease_count(key("q", "leases")), 0);
    // Small results live in the record, expiring ttl after completion; no key of their own.
    EXPECT_EQ(redis().hget(key("q", "job:" + id), "result"), R"({"ok":true})");
    EXPECT_FALSE(redis().exists(key("q", "result:" + id)));
    clock_.advance(std::chrono::seconds{61});
    EXPECT_EQ(run(broker_->get_result(id)).error(), errc::result_expired);
}

TEST_F(BrokerTest, MidSizedPayloadsAndResultsKeepTheRecordCompact) {
    // 65..1024-byte values are stored in 64-byte pieces, so the record stays a
    // listpack; every reader gets the whole value back.
    std::string payload = R"({"pad":")" + std::string(300, 'p') + R"("})";
    std::string result = R"({"out":")" + std::string(130, 'r') + R"("})";
    auto id = submit_to("q", 0, payload);
    EXPECT_EQ(get(id).payload, payload);
    auto job = claim("q").jobs.at(0);
    EXPECT_EQ(job.payload, payload);
    std::vector<completion> done{done_for(job, result, std::chrono::seconds{60})};
    ASSERT_TRUE(run(broker_->complete("q", done, now())).value().at(0).has_value());
    const auto record = key("q", "job:" + id);
    EXPECT_EQ(redis().cmd_str({"OBJECT", "ENCODING", record}), "listpack");
    // Pieces 2..k, and no count: readers look for them after a 64-byte first piece.
    EXPECT_EQ(redis().hget(record, "payload+5"), payload.substr(256, 64));
    EXPECT_EQ(redis().hget(record, "result+3"), result.substr(128));
    EXPECT_EQ(redis().hget(record, "pk"), "");
    EXPECT_EQ(redis().hget(record, "rk"), "");
    // Nor a result size: the inline result's length says it.
    EXPECT_EQ(redis().hget(record, "result_size"), "");
    auto rec = get(id);
    EXPECT_EQ(rec.payload, payload);
    EXPECT_EQ(rec.result_size_bytes, result.size());
    EXPECT_EQ(rec.attempts, 1);
    EXPECT_EQ(run(broker_->get_result(id)).value().data, result);
    // The history replays as JSON, though its entries are stored compactly.
    auto events = run(broker_->events(id, "0", 100)).value();
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[1].data, R"({"status":"in_progress","ts":)" + std::to_string(now()) +
                                  R"(,"attempt":1,"worker_id":"w1"})");
    EXPECT_NE(events[2].data.find(R"("status":"completed")"), std::string::npos);
    EXPECT_NE(events[2].data.find(R"("duration_ms":0,"wait_ms":0)"), std::string::npos);
    // A value over 1 KiB stays one field.
    auto big = R"({"pad":")" + std::string(2000, 'b') + R"("})";
    auto id2 = submit_to("q", 0, big);
    EXPECT_EQ(claim("q").jobs.at(0).payload, big);
    EXPECT_EQ(redis().hget(key("q", "job:" + id2), "payload"), big);
    // A payload of exactly one piece has no others to find.
    auto exact = R"({"pad":")" + std::string(54, 'e') + R"("})";
    ASSERT_EQ(exact.size(), 64u);
    submit_to("q", 0, exact);
    EXPECT_EQ(claim("q").jobs.at(0).payload, exact);
    // A record of the version before keeps its count, and is read by it.
    auto id3 = submit_to("q", 0, payload);
    redis().cmd({"HSET", key("q", "job:" + id3), "pk", "5"});
    EXPECT_EQ(claim("q").jobs.at(0).payload, payload);
}

TEST_F(BrokerTest, ClassicRecordFormatWritesWhatEarlierVersionsRead) {
    // SPOOL_RECORD_FORMAT=classic (a rolling upgrade): whole values, JSON entries.
    broker_options bo;
    bo.clock = &clock_;
    bo.compact_records = false;
    store::broker classic{*conn_, bo};
    std::string payload = R"({"pad":")" + std::string(300, 'p') + R"("})";
    job_spec s;
    s.queue = "cq";
    s.payload = payload;
    auto id = run(classic.submit(s, now())).value().id;
    claim_request req;
    req.queue = "cq";
    req.worker_id = "w1";
    req.max_jobs = 1;
    req.lease = default_lease;
    auto job = run(classic.claim(req, now())).value().jobs.at(0);
    EXPECT_EQ(job.payload, payload);
    std::vector<completion> done{done_for(job, payload, std::chrono::seconds{60})};
    ASSERT_TRUE(run(classic.complete("cq", done, now())).value().at(0).has_value());
    const auto record = key("cq", "job:" + id);
    EXPECT_EQ(redis().hget(record, "payload"), payload);
    EXPECT_EQ(redis().hget(record, "result"), payload);
    EXPECT_EQ(redis().hget(record, "pk"), "");
    EXPECT_EQ(redis().hget(record, "h2"), R"({"status":"in_progress","ts":)" + std::to_string(now()) +
                                              R"(,"attempt":1,"worker_id":"w1"})");
    EXPECT_EQ(redis().hget(record, "h3"), R"({"status":"completed","ts":)" + std::to_string(now()) +
                                              R"(,"duration_ms":0,"wait_ms":0})");
    // The indexes of that layout too: the `all` and `completed` sets, with the
    // size and attempt count the version before reads.
    EXPECT_EQ(redis().hget(record, "result_size"), std::to_string(payload.size()));
    EXPECT_EQ(redis().hget(record, "attempts"), "1");
    EXPECT_EQ(redis().cmd_str({"ZSCORE", key("cq", "all"), id}), "0");
    EXPECT_EQ(redis().cmd_str({"ZSCORE", key("cq", "completed"), id}), std::to_string(now()));
    EXPECT_FALSE(redis().exists(key("cq", "jobs")));
    EXPECT_FALSE(redis().exists(key("cq", "done")));
    // and this version reads it all the same
    EXPECT_EQ(run(broker_->get_result(id)).value().data, payload);
    EXPECT_EQ(run(broker_->events(id, "0", 100)).value().size(), 3u);
}

TEST_F(BrokerTest, ListingsReadTheStreamsThenTheSetsOfEarlierLayouts) {
    // Two jobs of the classic layout (as the version before wrote them: in the
    // `all` and `completed` sets), then this layout's: one by one, a batch of five
    // (one `jobs` entry), two completed in one call (one `done` entry).
    broker_options bo;
    bo.clock = &clock_;
    bo.compact_records = false;
    store::broker classic{*conn_, bo};
    std::vector<std::string> ids;  // oldest first
    auto complete_all = [&](store::broker& b, std::size_t n) {
        claim_request req;
        req.queue = "q";
        req.worker_id = "w1";
        req.max_jobs = n;
        req.lease = default_lease;
        auto batch = run(b.claim(req, now())).value();
        ASSERT_EQ(batch.jobs.size(), n);
        std::vector<completion> done;
        for (const auto& j : batch.jobs) done.push_back(done_for(j, "1", std::chrono::seconds{3600}));
        for (const auto& r : run(b.complete("q", done, now())).value()) ASSERT_TRUE(r.has_value());
    };
    job_spec s;
    s.queue = "q";
    for (int i = 0; i < 2; ++i) {
        ids.push_back(run(classic.submit(s, now())).value().id);
        clock_.advance(std::chrono::milliseconds{1});
    }
    complete_all(classic, 1);  // the older classic job
    ids.push_back(submit(s));
    clock_.advance(std::chrono::milliseconds{1});
    std::vector<job_spec> five(5, s);
    for (const auto& r : run(broker_->submit_many(five, now())).value()) ids.push_back(r.value().id);
    clock_.advance(std::chrono::milliseconds{1});
    complete_all(*broker_, 2);  // the second classic job and the first of this layout
    EXPECT_EQ(redis().zcard(key("q", "all")), 2);
    EXPECT_EQ(redis().zcard(key("q", "completed")), 1);
    EXPECT_EQ(redis().cmd_int({"XLEN", key("q", "jobs")}), 2);
    EXPECT_EQ(stream_ids("q", "done"), (std::vector<std::string>{ids[1], ids[2]}));
    EXPECT_EQ(redis().hget(key("q", "meta"), "done"), "2");
    EXPECT_EQ(run(broker_->queues()).value().at(0).completed, 3);
    auto pages = [&](list_query q) {
        std::vector<std::string> seen;
        for (int page = 0; page < 20; ++page) {
            auto p = run(broker_->list(q)).value();
            for (const auto& j : p.jobs) seen.push_back(j.id);
            if (p.next_cursor.empty()) break;
            q.cursor = p.next_cursor;
        }
        return seen;
    };
    // Every job, newest first: the stream's (a batch's ids newest first), then the set's.
    for (std::size_t limit : {1, 2, 3, 50}) {
        list_query q;
        q.limit = limit;
        EXPECT_EQ(pages(q), std::vector<std::string>(ids.rbegin(), ids.rend())) << "limit " << limit;
        q.status = job_status::completed;
        // Completed ones by completion: the `done` entry's newest first, then the set's.
        EXPECT_EQ(pages(q), (std::vector<std::string>{ids[2], ids[1], ids[0]})) << "limit " << limit;
    }
    // A stream cursor is kept as it is in a URL query; a damaged one is refused.
    list_query q;
    q.limit = 2;
    auto first = run(broker_->list(q)).value();
    EXPECT_EQ(first.next_cursor.find_first_not_of(
                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"),
              std::string::npos)
        << first.next_cursor;
    for (const std::string& bad : std::vector<std::string>{"x1-2.3", "x1-2.3.zzz", "x-1-2.3." + ids[0], "x1.2." + ids[0]}) {
        q.cursor = bad;
        EXPECT_EQ(run(broker_->list(q)).error(), errc::invalid_argument) << bad;
    }
    // The newest completions, for the dashboard's timings, come from both too.
    EXPECT_EQ(run(broker_->recent_timings("q", 10)).value().size(), 3u);
}

TEST_F(BrokerTest, ListingsGetPastLongRunsOfEntriesWhoseJobsAreGone) {
    // One job, then 1,000 whose records are gone (deleted; their `jobs` entries stay
    // until they age out), then one more: a page reads at most 20 windows, so pages
    // may come back short, but each has a cursor until every job was seen.
    job_spec s;
    s.queue = "q";
    auto oldest = submit(s);
    std::vector<job_spec> batch(500, s);
    redis::command del{"DEL"};
    for (int i = 0; i < 2; ++i)
        for (const auto& r : run(broker_->submit_many(batch, now())).value()) del.arg(key("q", "job:" + r.value().id));
    redis().cmd(del.args());
    auto newest = submit(s);
    list_query q;
    q.limit = 1;
    std::vector<std::string> seen;
    int pages = 0;
    for (; pages < 200; ++pages) {
        auto p = run(broker_->list(q)).value();
        for (const auto& j : p.jobs) seen.push_back(j.id);
        if (p.next_cursor.empty()) break;
        q.cursor = p.next_cursor;
    }
    EXPECT_EQ(seen, (std::vector<std::string>{newest, oldest}));
    EXPECT_GT(pages, 2);  // some pages came back empty, with a cursor
    EXPECT_LT(pages, 200);
}

TEST_F(BrokerTest, ACompletionEntryIsStampedAfterTheStreamsLastOne) {
    // A `done` entry carries the completion time, unless the stream's last entry
    // is later (another host's clock): then it follows that entry.
    redis().cmd({"XADD", key("q", "done"), std::to_string(now() + 60'000) + "-0", "x", ""});
    auto id = submit_to("q");
    auto job = claim("q").jobs.at(0);
    std::vector<completion> done{done_for(job, "1", std::chrono::seconds{3600})};
    ASSERT_TRUE(run(broker_->complete("q", done, now())).value().at(0).has_value());
    auto r = run(run_cmd(*conn_, redis::command{"XRANGE", key("q", "done"), "-", "+"})).value();
    auto entries = job_index::entries(r);
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[1].id, std::to_string(now() + 60'000) + "-1");
    EXPECT_EQ(entries[1].ids, std::vector<std::string>{id});
    // Then, with the stream's last entry older, the completion time again.
    redis().cmd({"DEL", key("q", "done")});
    auto id2 = submit_to("q");
    job = claim("q").jobs.at(0);
    done = {done_for(job, "1", std::chrono::seconds{3600})};
    ASSERT_TRUE(run(broker_->complete("q", done, now())).value().at(0).has_value());
    EXPECT_EQ(job_index::entries(run(run_cmd(*conn_, redis::command{"XRANGE", key("q", "done"), "-", "+"})).value())
                  .at(0)
                  .id,
              std::to_string(now()) + "-0");
    list_query completed;
    completed.status = job_status::completed;
    auto page = run(broker_->list(completed)).value();
    ASSERT_EQ(page.jobs.size(), 1u);  // the first one's entry went with the stream
    EXPECT_EQ(page.jobs[0].id, id2);
    // A caller whose clock runs an hour ahead does not stamp the future (it would
    // hold every later entry there, and out of retention): Redis's time is used.
    manual_clock ahead{now_millis() + 3'600'000};
    broker_options bo;
    bo.clock = &ahead;
    store::broker fast{*conn_, bo};
    redis().cmd({"DEL", key("q", "done")});
    job_spec s;
    s.queue = "q";
    run(fast.submit(s, ahead.now())).value();
    claim_request req;
    req.queue = "q";
    req.worker_id = "w1";
    req.max_jobs = 1;
    req.lease = default_lease;
    job = run(fast.claim(req, ahead.now())).value().jobs.at(0);
    done = {done_for(job, "1", std::chrono::seconds{3600})};
    ASSERT_TRUE(run(fast.complete("q", done, ahead.now())).value().at(0).has_value());
    auto stamped = job_index::entries(run(run_cmd(*conn_, redis::command{"XRANGE", key("q", "done"), "-", "+"})).value());
    ASSERT_EQ(stamped.size(), 1u);
    EXPECT_LT(stamped[0].ms, ahead.now() - 1'800'000);
}

TEST_F(BrokerTest, RetentionEmptiesTheDoneStreamAndAgesTheJobsStreamOut) {
    // On a clock that starts at the real time: `jobs` entries carry Redis's time.
    manual_clock clock{now_millis()};
    broker_options bo;
    bo.clock = &clock;
    store::broker b{*conn_, bo};
    job_spec s;
    s.queue = "r";
    auto finished = run(b.submit(s, clock.now())).value().id;
    s.run_at = clock.now() + 30LL * 24 * 3600 * 1000;  // still scheduled after retention
    auto later = run(b.submit(s, clock.now())).value().id;
    claim_request req;
    req.queue = "r";
    req.worker_id = "w1";
    req.max_jobs = 1;
    req.lease = default_lease;
    auto job = run(b.claim(req, clock.now())).value().jobs.at(0);
    ASSERT_EQ(job.id, finished);
    std::vector<completion> done{done_for(job, "1", std::chrono::seconds{3600})};
    ASSERT_TRUE(run(b.complete("r", done, clock.now())).value().at(0).has_value());
    EXPECT_EQ(run(b.trim("r", clock.now())).value(), 0u);
    EXPECT_EQ(redis().cmd_int({"XLEN", key("r", "done")}), 1);
    EXPECT_EQ(redis().cmd_int({"XLEN", key("r", "jobs")}), 2);
    // Past retention: the completed job goes with its `done` entry, and its `jobs`
    // entry, all of whose jobs are gone, with them; the live job's stays.
    clock.advance(b.options().retention + std::chrono::minutes{30});
    EXPECT_EQ(run(b.trim("r", clock.now())).value(), 1u);
    EXPECT_FALSE(redis().exists(key("r", "job:" + finished)));
    EXPECT_EQ(redis().cmd_int({"XLEN", key("r", "done")}), 0);
    EXPECT_EQ(redis().hget(key("r", "meta"), "done"), "0");
    EXPECT_EQ(stream_ids("r", "jobs"), std::vector<std::string>{later});
    EXPECT_EQ(redis().zcard(key("r", "all")), 0);
    // An hour after that its entry leaves the stream too, and the job, still
    // there, moves to `all`.
    clock.advance(std::chrono::hours{1});
    EXPECT_EQ(run(b.trim("r", clock.now())).value(), 0u);
    EXPECT_EQ(redis().cmd_int({"XLEN", key("r", "jobs")}), 0);
    EXPECT_EQ(redis().cmd_str({"ZSCORE", key("r", "all"), later}), "0");
    EXPECT_EQ(redis().zcard(key("r", "all")), 1);
    list_query q;
    q.queue = "r";
    auto page = run(b.list(q)).value();
    ASSERT_EQ(page.jobs.size(), 1u);
    EXPECT_EQ(page.jobs[0].id, later);
    // Deleting it takes it out of `all` as before.
    ASSERT_TRUE(run(b.remove(later, clock.now())).has_value());
    EXPECT_EQ(redis().zcard(key("r", "all")), 0);
}

TEST_F(BrokerTest, LargeResultIsStoredCompressed) {
    auto id = submit_to("q");
    auto job = claim("q").jobs.at(0);
    std::string big = "[" + std::string(20000, ' ') + "1]";
    std::vector<completion> done{done_for(job, big, std::chrono::seconds{60})};
    ASSERT_TRUE(run(broker_->complete("q", done, now())).value().at(0).has_value());
    EXPECT_LT(redis().cmd_int({"STRLEN", key("q", "result:" + id)}), 1000);
    EXPECT_EQ(run(broker_->get_result(id)).value().data, big);
    EXPECT_EQ(get(id).result_size_bytes, big.size());
}

// Only results stored apart have a key in the complete call (after the job keys, in
// job order); a fenced-out job's key is still counted, so the next one's result goes
// to its own key.
TEST_F(BrokerTest, ABatchMixesInlineResultsAndResultsStoredApart) {
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(submit_to("q"));
    auto jobs = claim("q", 4).jobs;
    ASSERT_EQ(jobs.size(), 4u);
    // Letters a compressor cannot shrink below the 1 KiB inline limit.
    const auto noise = [](unsigned seed) {
        std::string s = "\"";
        for (int i = 0; i < 4000; ++i) {
            seed = seed * 1103515245u + 12345u;
            s += "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(seed >> 16) % 62];
        }
        return s + "\"";
    };
    const std::string big1 = noise(1), big2 = noise(2);
    std::vector<completion> done{done_for(jobs[0], "\"small\"", std::chrono::seconds{60}),
                                 done_for(jobs[1], big1, std::chrono::seconds{60}),
                                 done_for(jobs[2], big2, std::chrono::seconds{60}),
                                 done_for(jobs[3], "7", std::chrono::seconds{60})};
    done[1].token += 1000;  // a newer attempt owns it: fenced out
    auto r = run(broker_->complete("q", done, now())).value();
    ASSERT_EQ(r.size(), 4u);
    EXPECT_TRUE(r[0].has_value());
    EXPECT_EQ(r[1].error(), errc::lease_lost);
    EXPECT_TRUE(r[2].has_value());
    EXPECT_TRUE(r[3].has_value());
    EXPECT_FALSE(redis().exists(key("q", "result:" + jobs[1].id)));
    EXPECT_GT(redis().cmd_int({"STRLEN", key("q", "result:" + jobs[2].id)}), 1024);
    EXPECT_EQ(run(broker_->get_result(jobs[2].id)).value().data, big2);
    EXPECT_EQ(run(broker_->get_result(jobs[0].id)).value().data, "\"small\"");
    EXPECT_EQ(run(broker_->get_result(jobs[3].id)).value().data, "7");
    EXPECT_FALSE(redis().exists(key("q", "result:" + jobs[0].id)));
    EXPECT_EQ(get(jobs[1].id).status, job_status::in_progress);
}

TEST_F(BrokerTest, ResultNotReadyThenExpired) {
    auto id = submit_to("q");
    EXPECT_EQ(run(broker_->get_result(id)).error(), errc::result_not_ready);
    auto job = claim("q").jobs.at(0);
    std::vector<completion> done{done_for(job, "1", std::chrono::seconds{1})};
    run(broker_->complete("q", done, now())).value();
    clock_.advance(std::chrono::seconds{2});
    redis().cmd({"DEL", key("q", "result:" + id)});  // what the TTL does on the real clock
    EXPECT_EQ(get(id).status, job_status::expired);
    EXPECT_FALSE(get(id).result_available);
    EXPECT_EQ(run(broker_->get_result(id)).error(), errc::result_expired);
}

TEST_F(BrokerTest, StaleTokenCannotComplete) {
    auto id = submit_to("q");
    auto first = claim("q", 1, std::chrono::milliseconds{1000}).jobs.at(0);
    clock_.advance(std::chrono::seconds{2});
    EXPECT_EQ(run(broker_->reclaim_expired("q", now())).value(), 1u);
    auto second = claim("q").jobs.at(0);
    EXPECT_EQ(second.id, id);
    EXPECT_EQ(second.attempt, 2);
    EXPECT_NE(second.token, first.token);
    std::vector<completion> stale{done_for(first, "\"old\"", std::chrono::seconds{60})};
    EXPECT_EQ(run(broker_->complete("q", stale, now())).value().at(0).error(), errc::lease_lost);
    std::vector<failure> stale_fail{{first.id, first.token, "boom", true, {}}};
    EXPECT_EQ(run(broker_->fail("q", stale_fail, now())).value().at(0), fail_outcome::lease_lost);
    EXPECT_EQ(run(broker_->progress("q", {first.id, first.token}, 50, "", now())).error(), errc::lease_lost);
    std::vector<completion> fresh{done_for(second, "\"new\"", std::chrono::seconds{60})};
    EXPECT_TRUE(run(broker_->complete("q", fresh, now())).value().at(0).has_value());
    EXPECT_EQ(run(broker_->get_result(id)).value().data, "\"new\"");
}

TEST_F(BrokerTest, WorkerThatStopsRenewingLosesTheJobToAnother) {
    auto id = submit_to("q");
    auto a = claim("q", 1, std::chrono::milliseconds{5000}).jobs.at(0);
    clock_.advance(std::chrono::seconds{3});
    std::vector<lease_ref> leases{{a.id, a.token}};
    auto ext = run(broker_->extend_leases("q", leases, std::chrono::milliseconds{5000}, now())).value();
    EXPECT_TRUE(ext.lost.empty());
    clock_.advance(std::chrono::seconds{4});  // renewed: still within the lease
    EXPECT_EQ(run(broker_->reclaim_expired("q", now())).value(), 0u);
    clock_.advance(std::chrono::seconds{2});  // now past it
    EXPECT_EQ(run(broker_->reclaim_expired("q", now())).value(), 1u);
    EXPECT_EQ(get(id).status, job_status::queued);
    auto b = claim("q").jobs.at(0);
    EXPECT_EQ(b.id, id);
    auto late = run(broker_->extend_leases("q", leases, std::chrono::milliseconds{5000}, now())).value();
    EXPECT_EQ(late.lost, std::vector<std::string>{id});
}

// A job whose worker died goes back where it stood, not behind the backlog that
// arrived while it ran (it restarted only once that backlog drained).
TEST_F(BrokerTest, ReclaimedJobKeepsItsPlaceInTheQueue) {
    auto first = submit_to("q");
    clock_.advance(std::chrono::milliseconds{5});
    auto second = submit_to("q");
    auto lost = claim("q", 1, std::chrono::milliseconds{1000}).jobs.at(0);
    ASSERT_EQ(lost.id, first);
    clock_.advance(std::chrono::milliseconds{5});
    std::vector<std::string> backlog;
    for (int i = 0; i < 3; ++i) {
        backlog.push_back(submit_to("q"));
        clock_.advance(std::chrono::milliseconds{1});
    }
    clock_.advance(std::chrono::seconds{2});
    ASSERT_EQ(run(broker_->reclaim_expired("q", now())).value(), 1u);
    auto next = claim("q", 5).jobs;
    ASSERT_EQ(next.size(), 5u);
    EXPECT_EQ(next[0].id, first);
    EXPECT_EQ(next[0].attempt, 2);
    EXPECT_EQ(next[1].id, second);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(next[2 + i].id, backlog[i]);
}

TEST_F(BrokerTest, ReclaimFailsTheJobWhenNoRetriesAreLeft) {
    job_spec s;
    s.queue = "q";
    s.max_retries = 0;
    auto id = submit(s);
    claim("q", 1, std::chrono::milliseconds{1000});
    clock_.advance(std::chrono::seconds{2});
    EXPECT_EQ(run(broker_->reclaim_expired("q", now())).value(), 1u);
    auto rec = get(id);
    EXPECT_EQ(rec.status, job_status::failed);
    EXPECT_NE(rec.error_message.find("lease expired"), std::string::npos);
}

TEST_F(BrokerTest, StartAndCompletionTimesAreReadFromTheHistoryEntries) {
    // The record stores no started_at, worker_id or completed_at beside its compact
    // entries; every reader still reports them, and a failure's duration is measured.
    auto id = submit_to("q");
    clock_.advance(std::chrono::milliseconds{40});
    const millis started = now();
    auto job = claim("q").jobs.at(0);
    const auto record = key("q", "job:" + id);
    for (const char* f : {"started_at", "worker_id", "completed_at"}) EXPECT_EQ(redis().hget(record, f), "") << f;
    auto rec = get(id);
    EXPECT_EQ(rec.started_at, started);
    EXPECT_EQ(rec.worker_id, "w1");
    clock_.advance(std::chrono::milliseconds{250});
    std::vector<failure> f{{id, job.token, "boom", false, std::chrono::milliseconds{0}}};
    ASSERT_EQ(run(broker_->fail("q", f, now())).value().at(0), fail_outcome::failed);
    auto events = run(broker_->events(id, "0", 100)).value();
    ASSERT_EQ(events.size(), 3u);
    EXPECT_NE(events[2].data.find(R"("duration_ms":250,"wait_ms":40)"), std::string::npos) << events[2].data;
    rec = get(id);
    EXPECT_EQ(rec.started_at, started);  // the failed attempt's start
    EXPECT_EQ(rec.worker_id, "w1");
    // Completed: completed_at is the completion entry's time, and the result is served until ttl after it.
    auto id2 = submit_to("q");
    auto job2 = claim("q").jobs.at(0);
    clock_.advance(std::chrono::milliseconds{30});
    const millis done_at = now();
    std::vector<completion> done{done_for(job2, R"({"ok":1})", std::chrono::seconds{60})};
    ASSERT_TRUE(run(broker_->complete("q", done, now())).value().at(0).has_value());
    EXPECT_EQ(redis().hget(key("q", "job:" + id2), "completed_at"), "");
    EXPECT_EQ(get(id2).completed_at, done_at);
    EXPECT_EQ(run(broker_->get_result(id2)).value().data, R"({"ok":1})");
    clock_.advance(std::chrono::seconds{61});
    EXPECT_EQ(run(broker_->get_result(id2)).error(), errc::result_expired);
    // Back in the queue after a lost lease: no start until the next attempt.
    auto id3 = submit_to("q");
    claim("q", 1, std::chrono::milliseconds{1000});
    clock_.advance(std::chrono::seconds{2});
    ASSERT_EQ(run(broker_->reclaim_expired("q", now())).value(), 1u);
    rec = get(id3);
    EXPECT_EQ(rec.status, job_status::queued);
    EXPECT_EQ(rec.started_at, 0);
    EXPECT_EQ(rec.worker_id, "");
}

TEST_F(BrokerTest, DelayedJobWaitsUntilDue) {
    job_spec s;
    s.queue = "q";
    s.run_at = now() + 5000;
    auto id = submit(s);
    EXPECT_EQ(get(id).status, job_status::scheduled);
    EXPECT_EQ(get(id).scheduled_at, now() + 5000);
    auto early = claim("q");
    EXPECT_TRUE(early.jobs.empty());
    EXPECT_EQ(early.next_due, now() + 5000);
    clock_.advance(std::chrono::seconds{5});
    auto batch = claim("q");
    ASSERT_EQ(batch.jobs.size(), 1u);
    EXPECT_EQ(batch.jobs[0].id, id);
    EXPECT_EQ(get(id).status, job_status::in_progress);
}

TEST_F(BrokerTest, PromoterMovesDueJobsToQueued) {
    job_spec s;
    s.queue = "q";
    s.run_at = now() + 1000;
    auto id = submit(s);
    EXPECT_EQ(run(broker_->promote_due("q", now())).value(), 0u);
    clock_.advance(std::chrono::seconds{1});
    EXPECT_EQ(run(broker_->promote_due("q", now())).value(), 1u);
    EXPECT_EQ(get(id).status, job_status::queued);
    EXPECT_EQ(redis().zcard(key("q", "scheduled")), 0);
    EXPECT_EQ(redis().zcard(key("q", "queued")), 1);
}

TEST_F(BrokerTest, RetriesBackOffThenFailThenManualRetryRequeues) {
    job_spec s;
    s.queue = "q";
    s.max_retries = 2;
    auto id = submit(s);
    for (int attempt = 1; attempt <= 3; ++attempt) {
        auto batch = claim("q");
        ASSERT_EQ(batch.jobs.size(), 1u) << attempt;
        EXPECT_EQ(batch.jobs[0].attempt, attempt);
        std::vector<failure> f{{id, batch.jobs[0].token, "boom " + std::to_string(attempt), true,
                                std::chrono::milliseconds{100 * attempt}}};
        auto out = run(broker_->fail("q", f, now())).value();
        if (attempt < 3) {
            EXPECT_EQ(out.at(0), fail_outcome::retrying);
            auto rec = get(id);
            EXPECT_EQ(rec.status, job_status::scheduled);
            EXPECT_EQ(rec.scheduled_at, now() + 100 * attempt);
            EXPECT_TRUE(claim("q").jobs.empty());  // still backing off
            clock_.advance(std::chrono::milliseconds{100 * attempt});
        } else {
            EXPECT_EQ(out.at(0), fail_outcome::failed);
        }
    }
    auto rec = get(id);
    EXPECT_EQ(rec.status, job_status::failed);
    EXPECT_EQ(rec.error_message, "boom 3");
    EXPECT_EQ(redis().zcard(key("q", "failed")), 1);
    ASSERT_TRUE(run(broker_->retry(id, now())).has_value());
    rec = get(id);
    EXPECT_EQ(rec.status, job_status::queued);
    EXPECT_EQ(rec.attempts, 0);
    EXPECT_EQ(redis().zcard(key("q", "failed")), 0);
    EXPECT_EQ(claim("q").jobs.at(0).attempt, 1);
    EXPECT_EQ(run(broker_->retry(id, now())).error(), errc::invalid_state);
}

TEST_F(BrokerTest, InvalidInputFailsWithoutRetry) {
    auto id = submit_to("q");
    auto job = claim("q").jobs.at(0);
    std::vector<failure> f{{id, job.token, "bad input", false, {}}};
    EXPECT_EQ(run(broker_->fail("q", f, now())).value().at(0), fail_outcome::failed);
    EXPECT_EQ(get(id).status, job_status::failed);
}

TEST_F(BrokerTest, UniqueKeyDedupesWhileLive) {
    job_spec s;
    s.queue = "q";
    s.unique_key = "report-42";
    auto first = run(broker_->submit(s, now())).value();
    auto second = run(broker_->submit(s, now())).value();
    EXPECT_FALSE(first.duplicate);
    EXPECT_TRUE(second.duplicate);
    EXPECT_EQ(second.id, first.id);
    EXPECT_EQ(redis().zcard(key("q", "queued")), 1);
    auto job = claim("q").jobs.at(0);
    std::vector<completion> done{done_for(job, "1", std::chrono::seconds{60})};
    run(broker_->complete("q", done, now())).value();
    auto third = run(broker_->submit(s, now())).value();
    EXPECT_FALSE(third.duplicate);
    EXPECT_NE(third.id, first.id);
}

TEST_F(BrokerTest, CancelQueuedRemovesItAtOnce) {
    auto id = submit_to("q");
    EXPECT_EQ(run(broker_->cancel(id, now())).value(), job_status::cancelled);
    EXPECT_EQ(get(id).status, job_status::cancelled);
    EXPECT_EQ(redis().zcard(key("q", "queued")), 0);
    EXPECT_TRUE(claim("q").jobs.empty());
    EXPECT_EQ(run(broker_->cancel(id, now())).error(), errc::invalid_state);
}

TEST_F(BrokerTest, CancelRunningFlagsAndSignalsTheWorker) {
    auto id = submit_to("q");
    auto job = claim("q").jobs.at(0);
    EXPECT_EQ(run(broker_->cancel(id, now())).value(), job_status::in_progress);
    EXPECT_TRUE(get(id).cancel_requested);
    std::vector<lease_ref> leases{{job.id, job.token}};
    auto ext = run(broker_->extend_leases("q", leases, default_lease, now())).value();
    EXPECT_EQ(ext.cancelled, std::vector<std::string>{id});
    // The worker stops the handler and reports the attempt; the job ends cancelled.
    std::vector<failure> f{{id, job.token, "cancelled", true, {}}};
    run(broker_->fail("q", f, now())).value();
    EXPECT_EQ(get(id).status, job_status::cancelled);
    EXPECT_EQ(redis().leased(key("q", "active")), 0);
    EXPECT_EQ(redis().zcard(key("q", "cancelled")), 1);
}

TEST_F(BrokerTest, RemoveDeletesEverything) {
    auto id = submit_to("q");
    auto job = claim("q").jobs.at(0);
    std::vector<completion> done{done_for(job, "1", std::chrono::seconds{60})};
    run(broker_->complete("q", done, now())).value();
    ASSERT_TRUE(run(broker_->remove(id, now())).has_value());
    EXPECT_EQ(run(broker_->get(id)).error(), errc::job_not_found);
    EXPECT_FALSE(redis().exists(key("q", "job:" + id)));
    EXPECT_FALSE(redis().exists(key("q", "events:" + id)));
    EXPECT_FALSE(redis().exists(key("q", "result:" + id)));
    // Its entries in the index streams stay until they age out, and lead nowhere.
    EXPECT_EQ(stream_ids("q", "done"), std::vector<std::string>{id});
    EXPECT_TRUE(run(broker_->list(list_query{})).value().jobs.empty());
    list_query completed;
    completed.status = job_status::completed;
    EXPECT_TRUE(run(broker_->list(completed)).value().jobs.empty());
    EXPECT_EQ(redis().hget(key("q", "meta"), "done"), "0");
    EXPECT_EQ(run(broker_->queues()).value().at(0).completed, 0);
    EXPECT_EQ(run(broker_->remove(id, now())).error(), errc::job_not_found);
}

TEST_F(BrokerTest, ReleaseHandsJobsBackWithoutCountingTheAttempt) {
    auto id = submit_to("q");
    auto job = claim("q").jobs.at(0);
    std::vector<lease_ref> leases{{job.id, job.token}};
    ASSERT_TRUE(run(broker_->release("q", leases, now())).has_value());
    auto rec = get(id);
    EXPECT_EQ(rec.status, job_status::queued);
    EXPECT_EQ(rec.attempts, 0);
    EXPECT_EQ(claim("q").jobs.at(0).attempt, 1);
}

TEST_F(BrokerTest, PausedQueueClaimsNothingUntilResumed) {
    submit_to("q");
    ASSERT_TRUE(run(broker_->pause("q")).has_value());
    auto batch = claim("q");
    EXPECT_TRUE(batch.paused);
    EXPECT_TRUE(batch.jobs.empty());
    auto qs = run(broker_->queues()).value();
    ASSERT_EQ(qs.size(), 1u);
    EXPECT_TRUE(qs[0].paused);
    ASSERT_TRUE(run(broker_->resume("q")).has_value());
    EXPECT_EQ(claim("q").jobs.size(), 1u);
}

TEST_F(BrokerTest, ProgressAndValidatingAreRecorded) {
    auto id = submit_to("q");
    claim_request req;
    req.queue = "q";
    req.worker_id = "w1";
    req.validating = true;
    auto job = run(broker_->claim(req, now())).value().jobs.at(0);
    EXPECT_EQ(get(id).status, job_status::validating);
    ASSERT_TRUE(run(broker_->mark_running("q", {job.id, job.token}, now())).has_value());
    EXPECT_EQ(get(id).status, job_status::in_progress);
    ASSERT_TRUE(run(broker_->progress("q", {job.id, job.token}, 150, "half \"done\"", now())).has_value());
    auto rec = get(id);
    EXPECT_EQ(rec.progress, 100);  // clamped
    EXPECT_EQ(rec.progress_message, "half \"done\"");
    auto events = run(broker_->events(id, "0", 100)).value();
    ASSERT_EQ(events.size(), 4u);  // queued, validating, in_progress, progress
    EXPECT_EQ(events[3].type, "progress");
    auto after = run(broker_->events(id, events[1].id, 100)).value();
    EXPECT_EQ(after.size(), 2u);
}

TEST_F(BrokerTest, QueueStatsCountEveryState) {
    for (int i = 0; i < 3; ++i) submit_to("q");
    job_spec later;
    later.queue = "q";
    later.run_at = now() + 60'000;
    submit(later);
    auto job = claim("q").jobs.at(0);
    std::vector<completion> done{done_for(job, "1", std::chrono::seconds{60})};
    run(broker_->complete("q", done, now())).value();
    claim("q");
    auto qs = run(broker_->queues()).value();
    ASSERT_EQ(qs.size(), 1u);
    EXPECT_EQ(qs[0].queued, 1);
    EXPECT_EQ(qs[0].scheduled, 1);
    EXPECT_EQ(qs[0].active, 1);
    EXPECT_EQ(qs[0].completed, 1);
    EXPECT_EQ(qs[0].submitted_total, 4);
    EXPECT_EQ(qs[0].completed_total, 1);
}

TEST_F(BrokerTest, ListPagesNewestFirstAcrossQueues) {
    std::vector<std::string> ids;
    for (int i = 0; i < 7; ++i) {
        ids.push_back(submit_to(i % 2 ? "a" : "b"));
        clock_.advance(std::chrono::milliseconds{1});
    }
    std::vector<std::string> seen;
    list_query q;
    q.limit = 3;
    for (int page = 0; page < 5; ++page) {
        auto p = run(broker_->list(q)).value();
        for (const auto& j : p.jobs) seen.push_back(j.id);
        if (p.next_cursor.empty()) break;
        q.cursor = p.next_cursor;
    }
    std::vector<std::string> expected(ids.rbegin(), ids.rend());
    EXPECT_EQ(seen, expected);
    list_query only_a;
    only_a.queue = "a";
    EXPECT_EQ(run(broker_->list(only_a)).value().jobs.size(), 3u);
    list_query bad;
    bad.cursor = "garbage";
    EXPECT_EQ(run(broker_->list(bad)).error(), errc::invalid_argument);
}

TEST_F(BrokerTest, ListFiltersByStatusAndTenant) {
    job_spec s;
    s.queue = "q";
    s.tenant = "t1";
    auto a = submit(s);
    s.tenant = "t2";
    submit(s);
    auto job = claim("q").jobs.at(0);  // a: the older one
    EXPECT_EQ(job.id, a);
    list_query running;
    running.status = job_status::in_progress;
    auto page = run(broker_->list(running)).value();
    ASSERT_EQ(page.jobs.size(), 1u);
    EXPECT_EQ(page.jobs[0].id, a);
    list_query t2;
    t2.tenant = "t2";
    page = run(broker_->list(t2)).value();
    ASSERT_EQ(page.jobs.size(), 1u);
    EXPECT_EQ(page.jobs[0].tenant, "t2");
}

// `active` and `leases` keep one entry that is no job, so Redis never packs them as
// listpacks (docs/keys.md, "Leases"); counts, listings and the reaper see jobs only.
TEST_F(BrokerTest, LeaseSetsStayUnpackedAndShowJobsOnly) {
    for (int i = 0; i < 3; ++i) submit_to("q");
    auto jobs = claim("q", 3).jobs;
    ASSERT_EQ(jobs.size(), 3u);
    EXPECT_EQ(redis().cmd_str({"OBJECT", "ENCODING", key("q", "active")}), "skiplist");
    EXPECT_EQ(redis().cmd_str({"OBJECT", "ENCODING", key("q", "leases")}), "hashtable");
    EXPECT_EQ(redis().zcard(key("q", "active")), 4);
    EXPECT_EQ(redis().leased(key("q", "active")), 3);
    EXPECT_EQ(redis().lease_count(key("q", "leases")), 3);
    EXPECT_EQ(run(broker_->queues()).value().at(0).active, 3);
    // Paging through the running jobs one at a time finds each once.
    list_query running;
    running.status = job_status::in_progress;
    running.limit = 1;
    std::set<std::string> seen;
    for (int page = 0; page < 10; ++page) {
        auto p = run(broker_->list(running)).value();
        for (const auto& j : p.jobs) EXPECT_TRUE(seen.insert(j.id).second) << j.id;
        if (p.next_cursor.empty()) break;
        running.cursor = p.next_cursor;
    }
    EXPECT_EQ(seen.size(), 3u);
    std::vector<completion> done;
    for (const auto& j : jobs) done.push_back(done_for(j, "1", std::chrono::seconds{60}));
    for (const auto& r : run(broker_->complete("q", done, now())).value()) EXPECT_TRUE(r.has_value());
    EXPECT_EQ(redis().leased(key("q", "active")), 0);
    EXPECT_EQ(redis().lease_count(key("q", "leases")), 0);
    EXPECT_EQ(run(broker_->queues()).value().at(0).active, 0);
    // Its +inf deadline is never due.
    clock_.advance(std::chrono::hours{24 * 365 * 100});
    EXPECT_EQ(run(broker_->reclaim_expired("q", now())).value(), 0u);
    EXPECT_EQ(run(broker_->list(running)).value().jobs.size(), 0u);
}

TEST_F(BrokerTest, TrimDeletesRecordsPastRetention) {
    auto id = submit_to("q");
    auto job = claim("q").jobs.at(0);
    std::vector<completion> done{done_for(job, "1", std::chrono::seconds{60})};
    run(broker_->complete("q", done, now())).value();
    EXPECT_EQ(run(broker_->trim("q", now())).value(), 0u);
    clock_.advance(broker_->options().retention + std::chrono::seconds{1});
    EXPECT_EQ(run(broker_->trim("q", now())).value(), 1u);
    EXPECT_EQ(run(broker_->get(id)).error(), errc::job_not_found);
    EXPECT_FALSE(redis().exists(key("q", "job:" + id)));
}

TEST_F(BrokerTest, WaitForWorkWakesOnSubmitAndTimesOut) {
    auto idle = run(broker_->wait_for_work(*blocking_, "q", std::chrono::milliseconds{100}));
    ASSERT_TRUE(idle.has_value());
    EXPECT_FALSE(*idle);
    submit_to("q");
    auto woken = run(broker_->wait_for_work(*blocking_, "q", std::chrono::milliseconds{2000}));
    ASSERT_TRUE(woken.has_value());
    EXPECT_TRUE(*woken);
}

TEST_F(BrokerTest, ClaimReportsTheHeadLeftBehindAndCandidatesAreTakenInOneStep) {
    auto a = submit_to("q", 0);
    auto b = submit_to("q", 0);
    auto c = submit_to("q", 5);  // higher priority: first
    auto first = claim("q", 1);
    ASSERT_EQ(first.jobs.size(), 1u);
    EXPECT_EQ(first.jobs[0].id, c);
    EXPECT_EQ(first.next, (std::vector<std::string>{a}));  // at most max_jobs ids

    claim_request req;
    req.queue = "q";
    req.worker_id = "w1";
    req.max_jobs = 2;
    req.candidates = {a, b};
    auto took = run(broker_->claim(req, now())).value();
    ASSERT_EQ(took.jobs.size(), 2u);
    EXPECT_EQ(took.jobs[0].id, a);
    EXPECT_EQ(took.jobs[1].id, b);
    EXPECT_EQ(took.jobs[0].payload, "{}");
    EXPECT_EQ(took.jobs[0].attempt, 1);
    EXPECT_GT(took.jobs[1].token, took.jobs[0].token);
    EXPECT_GT(took.jobs[0].token, first.jobs[0].token);
    EXPECT_TRUE(took.next.empty());
    EXPECT_EQ(get(a).status, job_status::in_progress);
    EXPECT_EQ(redis().zcard(key("q", "queued")), 0);
    EXPECT_EQ(redis().leased(key("q", "active")), 3);
    // The taken jobs complete like any other (their tokens fence them).
    std::vector<completion> done{done_for(took.jobs[0], "1", std::chrono::seconds{60})};
    EXPECT_TRUE(run(broker_->complete("q", done, now())).value().front().has_value());
}

TEST_F(BrokerTest, StaleCandidatesFallBackToTheFullClaim) {
    auto a = submit_to("q");
    auto b = submit_to("q");
    auto other = claim("q", 1);  // another worker took `a` after we saw it
    ASSERT_EQ(other.jobs.size(), 1u);
    ASSERT_EQ(other.jobs[0].id, a);
    claim_request req;
    req.queue = "q";
    req.worker_id = "w2";
    req.max_jobs = 1;
    req.candidates = {a};
    auto got = run(broker_->claim(req, now())).value();
    ASSERT_EQ(got.jobs.size(), 1u);
    EXPECT_EQ(got.jobs[0].id, b);
    EXPECT_EQ(get(a).worker_id, "w1");  // `a` stays with its owner
    // A due scheduled job is not visible to `take`: the full claim promotes it.
    job_spec d;
    d.queue = "q";
    d.payload = "{}";
    d.run_at = now() + 100;
    auto delayed = submit(d);
    auto c = submit_to("q");
    clock_.advance(std::chrono::milliseconds{200});
    req.max_jobs = 2;
    req.candidates = {c};
    auto both = run(broker_->claim(req, now())).value();
    std::set<std::string> ids;
    for (const auto& j : both.jobs) ids.insert(j.id);
    EXPECT_EQ(ids, (std::set<std::string>{c, delayed}));
}

TEST_F(BrokerTest, ACandidatePushedBackByHigherPrioritiesWaitsItsTurn) {
    auto x = submit_to("q", 0);
    auto h1 = submit_to("q", 5);  // came after the worker saw `x` at the head
    auto h2 = submit_to("q", 5);
    // The take looks at the head (its candidates and the next ones: two ids),
    // does not find `x` there, and the full claim takes the head instead.
    auto got = take("q", {x});
    ASSERT_EQ(got.jobs.size(), 1u);
    EXPECT_EQ(got.jobs[0].id, h1);
    EXPECT_EQ(get(x).status, job_status::queued);
    EXPECT_EQ(got.next, (std::vector<std::string>{h2}));
    // A candidate inside the head is taken wherever it is; the head left behind
    // comes from the same read.
    auto y = submit_to("q", 0);
    auto both = take("q", {h2, y});  // y is third: h2, x, y
    ASSERT_EQ(both.jobs.size(), 2u);
    EXPECT_EQ(both.jobs[0].id, h2);
    EXPECT_EQ(both.jobs[1].id, y);
    EXPECT_EQ(both.next, (std::vector<std::string>{x}));
}

TEST_F(BrokerTest, TakeHonoursPause) {
    auto a = submit_to("q");
    run(broker_->pause("q")).value();
    claim_request req;
    req.queue = "q";
    req.worker_id = "w1";
    req.candidates = {a};
    auto r = run(broker_->claim(req, now())).value();
    EXPECT_TRUE(r.paused);
    EXPECT_TRUE(r.jobs.empty());
    EXPECT_EQ(get(a).status, job_status::queued);
}

TEST_F(BrokerTest, ADeferredStartReadsAsRunningAndTheCompletionWritesItOut) {
    listen(broker_->updates_channel());
    // Until the subscription is live: a submit's event arrives.
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
         updates_.empty() && std::chrono::steady_clock::now() < deadline;) {
        submit_to("warm");
        ctx_.run_for(std::chrono::milliseconds{20});
    }
    ASSERT_FALSE(updates_.empty());
    auto a = submit_to("q");
    auto b = submit_to("q");
    clock_.advance(std::chrono::milliseconds{40});
    const millis started = now();
    const std::string ts = std::to_string(started);
    auto took = take("q", {a, b});
    ASSERT_EQ(took.jobs.size(), 2u);
    for (const auto& j : took.jobs) {
        EXPECT_EQ(j.attempt, 1);
        EXPECT_EQ(j.history, 2);  // the implied queued entry, then this start
        EXPECT_EQ(j.pending_start, "S" + ts + " 1 w1");
        EXPECT_EQ(j.payload, "{}");
    }
    // The take wrote the status and the pending start only: no attempt count, no entry.
    const auto rec_a = key("q", "job:" + a);
    EXPECT_EQ(redis().hget(rec_a, "st"), "S" + ts + " w1");
    EXPECT_EQ(redis().hget(rec_a, "attempts"), "");
    EXPECT_EQ(redis().hget(rec_a, "hn"), "1");
    // Every reader merges it.
    auto rec = get(a);
    EXPECT_EQ(rec.status, job_status::in_progress);
    EXPECT_EQ(rec.attempts, 1);
    EXPECT_EQ(rec.started_at, started);
    EXPECT_EQ(rec.worker_id, "w1");
    const std::string start_json = R"({"status":"in_progress","ts":)" + ts + R"(,"attempt":1,"worker_id":"w1"})";
    EXPECT_EQ(event_data(a), (std::vector<std::string>{std::string{"1-0 "} + R"({"status":"queued","ts":)" +
                                                           std::to_string(started - 40) + "}",
                                                       "2-0 " + start_json}));
    EXPECT_EQ(run(broker_->last_event(a)).value().value().id, "2-0");
    EXPECT_EQ(run(broker_->events(a, "1-0", 100)).value().size(), 1u);
    EXPECT_TRUE(run(broker_->events(a, "2-0", 100)).value().empty());
    // The job_started events come from the worker's side, with the attempt.
    std::string started_msg;
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
         started_msg.empty() && std::chrono::steady_clock::now() < deadline;) {
        ctx_.run_for(std::chrono::milliseconds{10});
        for (const auto& m : updates_)
            if (m.find("job_started") != std::string::npos) started_msg = m;
    }
    for (const auto& id : {a, b})
        EXPECT_NE(started_msg.find(R"({"type":"job_started","job_id":")" + id + R"(","queue":"q","status":"in_progress","ts":)" +
                                   ts + R"(,"attempt":1,"worker_id":"w1"})"),
                  std::string::npos)
            << started_msg;
    // Progress follows the pending start (entry 2), which stays pending.
    ASSERT_TRUE(run(broker_->progress("q", {a, took.jobs[0].token}, 50, "half", now())).has_value());
    EXPECT_EQ(redis().hget(rec_a, "st"), "S" + ts + " w1");
    auto evs = run(broker_->events(a, "0", 100)).value();
    ASSERT_EQ(evs.size(), 3u);
    EXPECT_EQ(evs[2].id, "2-1");
    EXPECT_EQ(evs[2].type, "progress");
    // The completion writes the start entry beside its own entry, on the
    // short-result path (a) and the long one (b); the attempt count is the entry's.
    clock_.advance(std::chrono::milliseconds{25});
    std::vector<completion> done{done_for(took.jobs[0], "1", std::chrono::seconds{3600}),
                                 done_for(took.jobs[1], "\"" + std::string(200, 'x') + "\"", std::chrono::seconds{60})};
    auto out = run(broker_->complete("q", done, now())).value();
    ASSERT_TRUE(out.at(0).has_value());
    ASSERT_TRUE(out.at(1).has_value());
    for (const auto& id : {a, b}) {
        const auto record = key("q", "job:" + id);
        EXPECT_EQ(redis().hget(record, "st"), "") << id;
        EXPECT_EQ(redis().hget(record, "attempts"), "") << id;
        EXPECT_EQ(redis().hget(record, "h2"), "S" + ts + " 1 w1") << id;
        EXPECT_EQ(redis().hget(record, "hn"), "3") << id;
        rec = get(id);
        EXPECT_EQ(rec.status, job_status::completed) << id;
        EXPECT_EQ(rec.attempts, 1) << id;
        EXPECT_EQ(rec.started_at, started) << id;
        EXPECT_EQ(rec.completed_at, started + 25) << id;
        auto all = event_data(id);
        ASSERT_GE(all.size(), 3u) << id;
        EXPECT_EQ(all[1], "2-0 " + start_json) << id;
        EXPECT_NE(all.back().find(R"("status":"completed")"), std::string::npos) << id;
    }
    EXPECT_EQ(run(broker_->get_result(b)).value().data, "\"" + std::string(200, 'x') + "\"");
}

TEST_F(BrokerTest, EveryOtherWayOutOfADeferredStartWritesTheStartFirst) {
    const auto start_of = [&](const std::string& id) { return redis().hget(key("q", "job:" + id), "h2"); };
    const std::string ts = std::to_string(now());
    // A retryable failure: the attempt counts, the start precedes the retry entry.
    job_spec s;
    s.queue = "q";
    s.payload = "{}";
    s.max_retries = 1;
    auto f = submit(s);
    auto job = take("q", {f}).jobs.at(0);
    std::vector<failure> boom{{f, job.token, "boom", true, std::chrono::milliseconds{10}}};
    ASSERT_EQ(run(broker_->fail("q", boom, now())).value().at(0), fail_outcome::retrying);
    auto rec = get(f);
    EXPECT_EQ(rec.status, job_status::scheduled);
    EXPECT_EQ(rec.attempts, 1);
    EXPECT_EQ(start_of(f), "S" + ts + " 1 w1");
    EXPECT_EQ(redis().hget(key("q", "job:" + f), "st"), "");
    auto evs = event_data(f);
    ASSERT_EQ(evs.size(), 3u);
    EXPECT_NE(evs[2].find(R"("status":"scheduled")"), std::string::npos) << evs[2];
    EXPECT_NE(evs[2].find(R"("attempt":1)"), std::string::npos) << evs[2];
    // Its second attempt (a deferred start again) fails for good: attempt 2 counted.
    clock_.advance(std::chrono::milliseconds{20});
    ASSERT_EQ(run(broker_->promote_due("q", now())).value(), 1u);
    job = take("q", {f}).jobs.at(0);
    EXPECT_EQ(job.attempt, 2);
    EXPECT_EQ(job.history, 5);  // queued, start, retry, queued (due), this start
    boom = {{f, job.token, "boom", true, std::chrono::milliseconds{10}}};
    ASSERT_EQ(run(broker_->fail("q", boom, now())).value().at(0), fail_outcome::failed);
    rec = get(f);
    EXPECT_EQ(rec.status, job_status::failed);
    EXPECT_EQ(rec.attempts, 2);
    EXPECT_EQ(event_data(f).size(), 6u);  // queued, start, retry, queued (due), start, failed

    // A release hands the job back without counting the attempt; its start stays in the history.
    auto r = submit_to("q");
    const std::string rts = std::to_string(now());
    job = take("q", {r}).jobs.at(0);
    std::vector<lease_ref> leases{{r, job.token}};
    ASSERT_TRUE(run(broker_->release("q", leases, now())).has_value());
    rec = get(r);
    EXPECT_EQ(rec.status, job_status::queued);
    EXPECT_EQ(rec.attempts, 0);
    EXPECT_EQ(rec.started_at, 0);
    EXPECT_EQ(start_of(r), "S" + rts + " 1 w1");
    EXPECT_EQ(take("q", {r}).jobs.at(0).attempt, 1);

    // A lost lease: the reclaim counts the attempt and writes its start.
    auto l = submit_to("q");
    take("q", {l}, false, std::chrono::milliseconds{1000});
    const std::string lts = std::to_string(now());
    clock_.advance(std::chrono::seconds{2});
    ASSERT_GE(run(broker_->reclaim_expired("q", now())).value(), 1u);
    rec = get(l);
    EXPECT_EQ(rec.status, job_status::queued);
    EXPECT_EQ(rec.attempts, 1);
    EXPECT_EQ(start_of(l), "S" + lts + " 1 w1");
    EXPECT_NE(rec.error_message.find("attempt 1"), std::string::npos) << rec.error_message;

    // Validating, then accepted: mark_running writes the start before its own entry.
    auto v = submit_to("q");
    job = take("q", {v}, true).jobs.at(0);
    EXPECT_EQ(get(v).status, job_status::validating);
    EXPECT_EQ(job.pending_start.front(), 'V');
    ASSERT_TRUE(run(broker_->mark_running("q", {v, job.token}, now())).has_value());
    EXPECT_EQ(start_of(v).front(), 'V');
    EXPECT_EQ(get(v).status, job_status::in_progress);
    job.history += 1;  // what the worker does after mark_running
    job.pending_start.clear();
    std::vector<completion> done{done_for(job, "1", std::chrono::seconds{60})};
    ASSERT_TRUE(run(broker_->complete("q", done, now())).value().at(0).has_value());
    evs = event_data(v);
    ASSERT_EQ(evs.size(), 4u);  // queued, validating, in_progress, completed
    EXPECT_NE(evs[1].find(R"("status":"validating")"), std::string::npos);
    EXPECT_NE(evs[2].find(R"("status":"in_progress")"), std::string::npos);
    EXPECT_NE(evs[3].find(R"("status":"completed")"), std::string::npos);
    EXPECT_EQ(get(v).attempts, 1);

    // A cancel request on a running job leaves the start pending; the cancel the
    // worker then reports writes it out.
    auto c = submit_to("q");
    const std::string cts = std::to_string(now());
    job = take("q", {c}).jobs.at(0);
    ASSERT_TRUE(run(broker_->cancel(c, now())).has_value());
    std::vector<failure> stop{{c, job.token, "cancelled", false, std::chrono::milliseconds{0}}};
    run(broker_->fail("q", stop, now())).value();
    rec = get(c);
    EXPECT_EQ(rec.status, job_status::cancelled);
    EXPECT_EQ(rec.attempts, 1);
    EXPECT_EQ(start_of(c), "S" + cts + " 1 w1");
}

TEST_F(BrokerTest, ATakeOfAJobWhoseRecordIsGoneLeavesNothingBehind) {
    auto a = submit_to("q");
    auto b = submit_to("q");
    redis().cmd({"DEL", key("q", "job:" + a)});  // lost (e.g. evicted) while queued
    auto took = take("q", {a, b});
    ASSERT_EQ(took.jobs.size(), 1u);
    EXPECT_EQ(took.jobs[0].id, b);
    EXPECT_EQ(redis().cmd_int({"EXISTS", key("q", "job:" + a)}), 0);
    EXPECT_EQ(redis().leased(key("q", "active")), 1);
    EXPECT_EQ(redis().lease_count(key("q", "leases")), 1);
}

TEST_F(BrokerTest, WaitForWorkPeeksTheHeadInTheSameRoundTrip) {
    auto a = submit_to("q");
    auto b = submit_to("q");
    auto w = run(broker_->wait_for_work(*blocking_, "q", std::chrono::milliseconds{2000}, 5)).value();
    EXPECT_TRUE(w.woken);
    EXPECT_EQ(w.ready, (std::vector<std::string>{a, b}));
}

TEST_F(BrokerTest, WaitAndTakeStartsTheJobThatWakesItInTheSameRoundTrip) {
    claim_request req;
    req.queue = "q";
    req.worker_id = "w1";
    req.max_jobs = 5;
    const millis later = system_clock::instance().now() + 3'600'000;  // a caller's clock ahead of Redis's
    // Idle: it times out with nothing taken.
    auto idle = run(broker_->wait_and_take(*blocking_, req, std::chrono::milliseconds{100}, 1, later)).value();
    EXPECT_FALSE(idle.woken);
    EXPECT_TRUE(idle.jobs.empty());
    EXPECT_TRUE(idle.ready.empty());
    // A submit while it waits wakes it with that job leased and started.
    std::optional<result<wake>> got;
    asio::co_spawn(
        ctx_,
        [&]() -> asio::awaitable<void> {
            got = co_await broker_->wait_and_take(*blocking_, req, std::chrono::milliseconds{5000}, 1, later);
        },
        asio::detached);
    ctx_.run_for(std::chrono::milliseconds{50});
    EXPECT_FALSE(got.has_value());  // blocked on the marker
    auto a = submit_to("q");
    ASSERT_TRUE(wait_until([&] { ctx_.run_for(std::chrono::milliseconds{5}); return got.has_value(); },
                           std::chrono::seconds{5}));
    auto w = got->value();
    EXPECT_TRUE(w.woken);
    ASSERT_EQ(w.jobs.size(), 1u);
    const auto& j = w.jobs[0];
    EXPECT_EQ(j.id, a);
    EXPECT_EQ(j.attempt, 1);
    EXPECT_EQ(j.payload, "{}");
    EXPECT_EQ(j.started_at, later);  // the caller's time, being the later one
    EXPECT_EQ(j.lease_until, later + req.lease.count());
    EXPECT_EQ(get(a).status, job_status::in_progress);
    EXPECT_EQ(get(a).started_at, later);
    EXPECT_EQ(redis().leased(key("q", "active")), 1);
    EXPECT_EQ(redis().zcard(key("q", "queued")), 0);
    // Its token fences it as any claim's does.
    auto done = run(broker_->complete("q", {done_for(j, "1", std::chrono::seconds{60})}, now())).value();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_TRUE(done[0].has_value());
    EXPECT_EQ(get(a).status, job_status::completed);
}

TEST_F(BrokerTest, WaitAndTakeLeavesTheRestOfTheHeadAndUsesRedisTimeWhenTheCallerIsBehind) {
    auto a = submit_to("q");
    auto b = submit_to("q");
    auto c = submit_to("q");
    claim_request req;
    req.queue = "q";
    req.worker_id = "w1";
    req.max_jobs = 5;
    // The wait began long ago (by the caller's clock): the take uses Redis's time.
    auto w = run(broker_->wait_and_take(*blocking_, req, std::chrono::milliseconds{2000}, 1, 1000)).value();
    EXPECT_TRUE(w.woken);
    ASSERT_EQ(w.jobs.size(), 1u);
    EXPECT_EQ(w.jobs[0].id, a);
    EXPECT_EQ(w.ready, (std::vector<std::string>{b, c}));  // the next claim's candidates
    const millis wall = system_clock::instance().now();
    EXPECT_GT(w.jobs[0].started_at, wall - 60'000);
    EXPECT_LT(w.jobs[0].started_at, wall + 60'000);
    // Paused: nothing is taken.
    run(broker_->pause("q")).value();
    auto p = run(broker_->wait_and_take(*blocking_, req, std::chrono::milliseconds{100}, 1, now())).value();
    EXPECT_TRUE(p.paused);
    EXPECT_TRUE(p.jobs.empty());
    EXPECT_EQ(redis().zcard(key("q", "queued")), 2);
}

TEST_F(BrokerTest, WorkersRegisterAndDisappearWhenTheirRecordExpires) {
    worker_info w;
    w.id = "host-1";
    w.host = "host";
    w.pid = 1;
    w.queues = {"a", "b"};
    w.concurrency = 4;
    w.last_heartbeat = now();
    w.running = {"j1"};
    ASSERT_TRUE(run(broker_->register_worker(w, std::chrono::seconds{10})).has_value());
    auto ws = run(broker_->workers()).value();
    ASSERT_EQ(ws.size(), 1u);
    EXPECT_EQ(ws[0].queues, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(ws[0].running, std::vector<std::string>{"j1"});
    redis().cmd({"DEL", "spool:worker:host-1"});  // what the record's TTL does
    EXPECT_TRUE(run(broker_->workers()).value().empty());
    EXPECT_EQ(redis().zcard("spool:workers"), 0);
}

TEST_F(BrokerTest, ConcurrentSubmitsShareScriptCallsAndEachGetsItsOwnJob) {
    // 200 submits in flight at once (as from many HTTP connections): the first goes
    // alone, the rest wait for it and go batched, so far fewer script calls than jobs.
    for (auto* s : redis().servers()) s->cmd({"CONFIG", "RESETSTAT"});
    constexpr int n = 200;
    auto all = [this]() -> asio::awaitable<std::vector<std::string>> {
        std::vector<std::optional<result<submit_result>>> out(n);
        int finished = 0;
        asio::steady_timer all_done{ctx_, asio::steady_timer::time_point::max()};
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(
                ctx_,
                [&, i]() -> asio::awaitable<void> {
                    job_spec s;
                    s.queue = i % 2 ? "odd" : "even";
                    s.payload = "{\"i\":" + std::to_string(i) + "}";
                    out[static_cast<std::size_t>(i)] = co_await broker_->submit(std::move(s), now());
                    if (++finished == n) all_done.cancel();
                },
                asio::detached);
        }
        while (finished < n) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
        std::vector<std::string> ids;
        for (auto& r : out) {
            if (r && *r) ids.push_back((*r)->id);
        }
        co_return ids;
    };
    auto ids = run(all());
    ASSERT_EQ(ids.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
    EXPECT_EQ(redis().zcard(key("even", "queued")) + redis().zcard(key("odd", "queued")), n);
    for (int i : {0, 1, 99, 199}) {
        auto j = get(ids[static_cast<std::size_t>(i)]);
        EXPECT_EQ(j.payload, "{\"i\":" + std::to_string(i) + "}");
        EXPECT_EQ(j.queue, i % 2 ? "odd" : "even");
    }
    long long calls = 0;
    for (auto* s : redis().servers()) {
        auto stats = s->info("cmdstat_evalsha");
        if (!stats.empty()) calls += std::stoll(stats.substr(stats.find("calls=") + 6));
    }
    EXPECT_LT(calls, n / 4);
}

TEST_F(BrokerTest, ReplicatedQueueSaysSoWhenNoReplicaConfirms) {
    // This server has no replica: WAIT answers 0, so a replicated queue's submit
    // and completion report not_replicated (the write itself is on the master).
    broker_options bo;
    bo.clock = &clock_;
    bo.replicated_queues = {"safe"};
    bo.replica_timeout = std::chrono::milliseconds{50};
    store::broker strict{*conn_, bo};
    job_spec s;
    s.queue = "safe";
    auto r = run(strict.submit(s, now()));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::not_replicated);
    EXPECT_EQ(redis().zcard(key("safe", "queued")), 1);  // on the master all the same

    auto batch = claim("safe");
    ASSERT_EQ(batch.jobs.size(), 1u);
    std::vector<completion> done{done_for(batch.jobs[0], "{}", std::chrono::seconds{60})};
    auto c = run(strict.complete("safe", done, now()));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), errc::not_replicated);
    EXPECT_EQ(get(batch.jobs[0].id).status, job_status::completed);

    // Other queues do not wait; "*" with an exception behaves the same way.
    s.queue = "fast";
    EXPECT_TRUE(run(strict.submit(s, now())));
    bo.replicated_queues = {"*"};
    bo.async_queues = {"fast"};
    store::broker all{*conn_, bo};
    EXPECT_TRUE(run(all.submit(s, now())));
    s.queue = "other";
    auto o = run(all.submit(s, now()));
    ASSERT_FALSE(o);
    EXPECT_EQ(o.error(), errc::not_replicated);
}

TEST_F(BrokerTest, PartitionedQueueSpreadsJobsAndAnswersAsOneQueue) {
    broker_options bo;
    bo.clock = &clock_;
    bo.partitions = {{"wide", 3}};
    store::broker wide{*conn_, bo};
    const auto parts = partition_queues("wide", 3);
    std::vector<std::string> ids;
    for (int i = 0; i < 30; ++i) {
        job_spec s;
        s.queue = "wide";
        s.payload = "{\"i\":" + std::to_string(i) + "}";
        auto r = run(wide.submit(s, now()));
        ASSERT_TRUE(r);
        ids.push_back(r->id);
    }
    // Round robin: ten in each partition, each partition a queue of its own in Redis.
    for (const auto& p : parts) EXPECT_EQ(redis().zcard(key(p, "queued")), 10) << p;
    auto names = run(wide.queue_names()).value();
    for (const auto& p : parts) EXPECT_NE(std::find(names.begin(), names.end(), p), names.end()) << p;

    // Every answer names the logical queue, summed over its partitions.
    auto qs = run(wide.queues()).value();
    ASSERT_EQ(qs.size(), 1u);
    EXPECT_EQ(qs[0].name, "wide");
    EXPECT_EQ(qs[0].queued, 30);
    EXPECT_EQ(qs[0].submitted_total, 30);
    EXPECT_EQ(run(wide.get(ids[4])).value().queue, "wide");
    EXPECT_TRUE(run(wide.queue_exists("wide")).value());
    list_query lq;
    lq.queue = "wide";
    lq.limit = 12;
    std::set<std::string> listed;
    for (int page = 0; page < 5; ++page) {
        auto pg = run(wide.list(lq)).value();
        for (const auto& j : pg.jobs) {
            EXPECT_EQ(j.queue, "wide");
            listed.insert(j.id);
        }
        if (pg.next_cursor.empty()) break;
        lq.cursor = pg.next_cursor;
    }
    EXPECT_EQ(listed, std::set<std::string>(ids.begin(), ids.end()));
    // A broker that was not told about the partitions (another API replica with an
    // older config) still lists and counts all of them.
    lq.cursor.clear();
    lq.limit = 100;
    EXPECT_EQ(run(broker_->list(lq)).value().jobs.size(), 30u);
    EXPECT_EQ(run(broker_->queues()).value().at(0).queued, 30);

    // Pause and resume hold for every partition.
    ASSERT_TRUE(run(wide.pause("wide")));
    EXPECT_TRUE(run(wide.queues()).value().at(0).paused);
    for (const auto& p : parts) EXPECT_TRUE(claim(p).paused) << p;
    ASSERT_TRUE(run(wide.resume("wide")));
    EXPECT_FALSE(run(wide.queues()).value().at(0).paused);
    for (const auto& p : parts) EXPECT_EQ(claim(p, 10).jobs.size(), 10u) << p;
}

TEST_F(BrokerTest, PartitionedQueueDedupesAUniqueKeyInOnePartition) {
    broker_options bo;
    bo.clock = &clock_;
    bo.partitions = {{"wide", 4}};
    store::broker wide{*conn_, bo};
    job_spec s;
    s.queue = "wide";
    s.unique_key = "invoice-17";
    auto first = run(wide.submit(s, now())).value();
    for (int i = 0; i < 5; ++i) {
        auto again = run(wide.submit(s, now())).value();
        EXPECT_TRUE(again.duplicate);
        EXPECT_EQ(again.id, first.id);
    }
    const auto home = partition_queue("wide", partition_of_key("invoice-17", 4), 4);
    EXPECT_EQ(redis().zcard(key(home, "queued")), 1);
    EXPECT_EQ(run(wide.queues()).value().at(0).queued, 1);
}

TEST_F(BrokerTest, JobEventsNameTheLogicalQueue) {
    broker_options bo;
    bo.clock = &clock_;
    bo.partitions = {{"wide", 2}};
    store::broker wide{*conn_, bo};
    listen(wide.updates_channel());
    auto& got = updates_;
    // Submit (round robin over both partitions) until the subscription is live
    // and events of both partitions have arrived.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
    while (got.size() < 4 && std::chrono::steady_clock::now() < deadline) {
        job_spec s;
        s.queue = "wide";
        ASSERT_TRUE(run(wide.submit(s, now())));
        ctx_.run_for(std::chrono::milliseconds{20});
    }
    ASSERT_GE(got.size(), 4u);
    for (const auto& m : got) {
        EXPECT_NE(m.find("\"queue\":\"wide\""), std::string::npos) << m;
        EXPECT_EQ(m.find('#'), std::string::npos) << m;
    }
}

TEST_F(BrokerTest, JobCreatedEventsAreTheSameWhoeverBuildsThem) {
    // A batch without unique keys gets its message built by the broker; one with a
    // unique key (a duplicate gets no event) by the script. Both read alike.
    listen(broker_->updates_channel());
    auto& got = updates_;
    // Until the subscription is live: single submits, then drop what they said.
    ASSERT_TRUE(wait_until(
        [&] {
            submit_to("warm");
            ctx_.run_for(std::chrono::milliseconds{20});
            return !got.empty();
        },
        std::chrono::seconds{5}));
    got.clear();
    auto batch = [&](bool unique) {
        std::vector<job_spec> specs(3);
        for (auto& sp : specs) sp.queue = "ev";
        specs[1].run_at = now() + 60'000;  // scheduled
        if (unique) {
            specs[0].unique_key = "u1";
            specs[2].unique_key = "u1";  // a duplicate of the first: no event
        }
        auto r = run(broker_->submit_many(specs, now())).value();
        std::vector<std::string> ids;
        for (auto& x : r) ids.push_back(x.value().id);
        return ids;
    };
    auto a = batch(false);
    auto b = batch(true);
    ASSERT_TRUE(wait_until([&] { ctx_.run_for(std::chrono::milliseconds{10}); return got.size() >= 2; },
                           std::chrono::seconds{5}));
    auto ev = [&](const std::string& id, const char* status) {
        return R"({"type":"job_created","job_id":")" + id + R"(","queue":"ev","status":")" + status +
               R"(","ts":)" + std::to_string(now()) + "}";
    };
    EXPECT_EQ(got[0], "[" + ev(a[0], "queued") + "," + ev(a[1], "scheduled") + "," + ev(a[2], "queued") + "]");
    EXPECT_EQ(got[1], "[" + ev(b[0], "queued") + "," + ev(b[1], "scheduled") + "]");
    EXPECT_EQ(b[2], b[0]);
}

TEST_F(BrokerTest, ACompleteBatchPublishesTheEventsOfTheJobsItCompleted) {
    // The broker builds the batch's message; the script sends it whole, or, when a
    // stale token keeps a job out, the completed jobs' events alone.
    listen(broker_->updates_channel());
    auto& got = updates_;
    ASSERT_TRUE(wait_until(
        [&] {
            submit_to("warm");
            ctx_.run_for(std::chrono::milliseconds{20});
            return !got.empty();
        },
        std::chrono::seconds{5}));
    auto completions = [&] {
        std::vector<std::string> out;
        for (auto& m : got)
            if (m.find("job_completed") != std::string::npos) out.push_back(m);
        return out;
    };
    for (int i = 0; i < 6; ++i) submit_to("cv");
    auto jobs = claim("cv", 6).jobs;
    ASSERT_EQ(jobs.size(), 6u);
    auto event = [&](const claimed_job& j) {
        return R"({"type":"job_completed","job_id":")" + j.id + R"(","queue":"cv","status":"completed","ts":)" +
               std::to_string(now()) + R"(,"duration_ms":0,"wait_ms":0})";
    };
    std::vector<completion> all3, some;
    for (int i = 0; i < 3; ++i) all3.push_back(done_for(jobs[i], "{}", std::chrono::seconds{60}));
    for (int i = 3; i < 6; ++i) some.push_back(done_for(jobs[i], "{}", std::chrono::seconds{60}));
    some[0].token += 1000;  // a newer attempt owns it
    some[2].token += 1000;
    auto a = run(broker_->complete("cv", all3, now())).value();
    auto b = run(broker_->complete("cv", some, now())).value();
    for (auto& x : a) EXPECT_TRUE(x.has_value());
    EXPECT_EQ(b.at(0).error(), errc::lease_lost);
    EXPECT_TRUE(b.at(1).has_value());
    EXPECT_EQ(b.at(2).error(), errc::lease_lost);
    // None completed: no message. A submit after it marks where its message would be.
    some.erase(some.begin() + 1);
    auto c = run(broker_->complete("cv", some, now())).value();
    EXPECT_EQ(c.at(0).error(), errc::lease_lost);
    const auto marker = submit_to("cv");  // the same node publishes it, after the completes
    ASSERT_TRUE(wait_until(
        [&] {
            ctx_.run_for(std::chrono::milliseconds{10});
            return !got.empty() && got.back().find(marker) != std::string::npos;
        },
        std::chrono::seconds{5}));
    auto done = completions();
    ASSERT_EQ(done.size(), 2u);
    EXPECT_EQ(done[0], "[" + event(jobs[0]) + "," + event(jobs[1]) + "," + event(jobs[2]) + "]");
    EXPECT_EQ(done[1], "[" + event(jobs[4]) + "]");
}

// ---------------------------------------------------------------- dependencies

namespace {

class DependencyTest : public BrokerTest {
protected:
    std::string child_of(std::vector<std::string> parents, const std::string& queue = "q",
                         std::string on_parent_failure = "fail") {
        job_spec s;
        s.queue = queue;
        s.depends_on = std::move(parents);
        s.on_parent_failure = std::move(on_parent_failure);
        return submit(std::move(s));
    }
    // Claims the job `id` from `queue` (it must be at the head) and completes it with `result`.
    void run_to_completion(const std::string& queue, const std::string& id, const std::string& result = "{}") {
        auto batch = claim(queue, 10);
        bool found = false;
        for (const auto& j : batch.jobs) {
            std::vector<completion> done{done_for(j, j.id == id ? result : "{}", std::chrono::seconds{60})};
            ASSERT_TRUE(run(broker_->complete(queue, done, now())));
            found = found || j.id == id;
        }
        ASSERT_TRUE(found) << id << " was not ready in " << queue;
    }
    void fail_for_good(const std::string& queue, const std::string& id) {
        auto batch = claim(queue, 10);
        ASSERT_EQ(batch.jobs.size(), 1u);
        ASSERT_EQ(batch.jobs[0].id, id);
        std::vector<failure> f{{id, batch.jobs[0].token, "boom", false, {}}};
        ASSERT_EQ(run(broker_->fail(queue, f, now())).value().at(0), fail_outcome::failed);
    }
    job_status status(const std::string& id) { return get(id).status; }
};

}  // namespace

TEST_F(DependencyTest, ThreeLevelsWithFanOutAndFanInRunInOrder) {
    // a -> (b, c) -> d: b and c wait for a, d for both.
    auto a = submit_to("q");
    auto b = child_of({a});
    auto c = child_of({a}, "other");
    auto d = child_of({b, c});
    EXPECT_EQ(status(b), job_status::waiting);
    EXPECT_EQ(status(d), job_status::waiting);
    EXPECT_EQ(get(d).parents, (std::vector<std::string>{std::min(b, c), std::max(b, c)}));
    auto ac = get(a).children;
    std::sort(ac.begin(), ac.end());
    EXPECT_EQ(ac, (std::vector<std::string>{std::min(b, c), std::max(b, c)}));
    EXPECT_EQ(run(broker_->queues()).value().at(0).waiting + run(broker_->queues()).value().at(1).waiting, 3);
    list_query lq;
    lq.status = job_status::waiting;
    EXPECT_EQ(run(broker_->list(lq)).value().jobs.size(), 3u);

    // Only a is ready; its completion queues b and c in the same call.
    auto first = claim("q", 10);
    ASSERT_EQ(first.jobs.size(), 1u);
    EXPECT_EQ(first.jobs[0].id, a);
    std::vector<completion> done{done_for(first.jobs[0], R"({"a":1})", std::chrono::seconds{60})};
    ASSERT_TRUE(run(broker_->complete("q", done, now())));
    EXPECT_EQ(status(b), job_status::queued);
    EXPECT_EQ(status(c), job_status::queued);
    EXPECT_EQ(status(d), job_status::waiting);

    run_to_completion("other", c);
    EXPECT_EQ(status(d), job_status::waiting);  // still waits for b
    auto second = claim("q", 10);
    ASSERT_EQ(second.jobs.size(), 1u);
    EXPECT_EQ(second.jobs[0].id, b);
    EXPECT_EQ(second.jobs[0].parents, (std::vector<std::string>{a}));  // the worker reads a's result
    std::vector<completion> done_b{done_for(second.jobs[0], "{}", std::chrono::seconds{60})};
    ASSERT_TRUE(run(broker_->complete("q", done_b, now())));
    EXPECT_EQ(status(d), job_status::queued);
    run_to_completion("q", d);
    EXPECT_EQ(status(d), job_status::completed);
    EXPECT_EQ(redis().zcard(key("q", "waiting")), 0);
    EXPECT_EQ(redis().cmd_int({"HGET", key("q", "meta"), "kids"}), 0);
}

TEST_F(DependencyTest, AFailedParentFailsCancelsOrRunsItsChildrenAsAsked) {
    auto p = submit_to("q");
    auto failing = child_of({p}, "q", "fail");
    auto cancelling = child_of({p}, "q", "cancel");
    auto running = child_of({p}, "q", "run");
    auto grandchild = child_of({failing});  // fails in turn
    fail_for_good("q", p);
    EXPECT_EQ(status(failing), job_status::failed);
    EXPECT_NE(get(failing).error_message.find(p), std::string::npos) << get(failing).error_message;
    EXPECT_EQ(status(cancelling), job_status::cancelled);
    EXPECT_EQ(status(running), job_status::queued);
    EXPECT_EQ(status(grandchild), job_status::failed);
}

TEST_F(DependencyTest, ACancelledOrDeletedParentResolvesItsChildren) {
    auto p1 = submit_to("q");
    auto p2 = submit_to("q");
    auto c1 = child_of({p1}, "q", "cancel");
    auto c2 = child_of({p2}, "q", "fail");
    ASSERT_EQ(run(broker_->cancel(p1, now())).value(), job_status::cancelled);
    EXPECT_EQ(status(c1), job_status::cancelled);
    ASSERT_TRUE(run(broker_->remove(p2, now())));
    EXPECT_EQ(status(c2), job_status::failed);
    // A waiting job can itself be cancelled.
    auto p3 = submit_to("q");
    auto c3 = child_of({p3});
    ASSERT_EQ(run(broker_->cancel(c3, now())).value(), job_status::cancelled);
    run_to_completion("q", p3);
    EXPECT_EQ(status(c3), job_status::cancelled);
}

TEST_F(DependencyTest, AParentThatAlreadyFinishedCountsAtOnce) {
    auto p = submit_to("q");
    run_to_completion("q", p);
    job_spec s;
    s.queue = "q";
    s.depends_on = {p};
    auto r = run(broker_->submit(s, now())).value();
    EXPECT_EQ(r.status, job_status::queued);
    EXPECT_EQ(status(r.id), job_status::queued);
}

TEST_F(DependencyTest, UnknownOrMalformedParentsAreRejected) {
    job_spec s;
    s.queue = "q";
    s.depends_on = {make_job_id(now(), 0)};
    auto r = run(broker_->submit(s, now()));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::unknown_dependency);
    s.depends_on = {"not-an-id"};
    EXPECT_EQ(run(broker_->submit(s, now())).error(), errc::invalid_argument);
    s.depends_on = {submit_to("q")};
    s.on_parent_failure = "ignore";
    EXPECT_EQ(run(broker_->submit(s, now())).error(), errc::invalid_argument);
    // Another tenant's job is not there for this one.
    job_spec theirs;
    theirs.queue = "q";
    theirs.tenant = "acme";
    auto their_id = submit(theirs);
    job_spec mine;
    mine.queue = "q";
    mine.tenant = "globex";
    mine.depends_on = {their_id};
    EXPECT_EQ(run(broker_->submit(mine, now())).error(), errc::unknown_dependency);
    EXPECT_EQ(redis().zcard(key("q", "waiting")), 0);  // nothing was created
}

TEST_F(DependencyTest, AnOutcomeNotDeliveredBeforeACrashIsDeliveredOnceByMaintenance) {
    // Two parents; the last one's completion is recorded but its delivery never
    // ran (the completing process died): the entry waits in the queue's
    // `resolved` list until resolve_pending (maintenance, every reaper tick).
    auto p1 = submit_to("q");
    auto p2 = submit_to("o");
    auto c = child_of({p1, p2});
    run_to_completion("q", p1);
    EXPECT_EQ(status(c), job_status::waiting);
    // p2 completes as the complete script leaves it when nobody delivers: terminal,
    // with its outcome queued for c.
    redis().cmd({"HSET", key("o", "job:" + p2), "status", "completed", "completed_at", std::to_string(now())});
    redis().cmd({"ZREM", key("o", "queued"), p2});
    redis().cmd({"SREM", key("o", "children:" + p2), c});
    redis().cmd({"HINCRBY", key("o", "meta"), "kids", "-1"});
    redis().cmd({"RPUSH", key("o", "resolved"), c + " " + p2 + " completed"});
    // The same outcome twice (a delivery retried after a lost reply) counts once.
    redis().cmd({"RPUSH", key("o", "resolved"), c + " " + p1 + " completed"});
    EXPECT_EQ(status(c), job_status::waiting);
    ASSERT_TRUE(run(broker_->resolve_pending("o", now())));
    EXPECT_EQ(status(c), job_status::queued);
    EXPECT_EQ(redis().cmd_int({"LLEN", key("o", "resolved")}), 0);
    EXPECT_EQ(redis().cmd_int({"HGET", key("q", "job:" + c), "dleft"}), 0);
}

TEST_F(DependencyTest, AFlowIsCreatedWholeAndRunsInOrder) {
    // a -> (b, c) -> d, and d also waits for an existing job.
    auto outside = submit_to("other");
    std::vector<flow_job> flow(4);
    for (auto& f : flow) f.spec.queue = "q";
    flow[1].after = {0};
    flow[2].after = {0};
    flow[2].spec.queue = "other";
    flow[3].after = {1, 2};
    flow[3].spec.depends_on = {outside};
    auto r = run(broker_->submit_flow(flow, now()));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->jobs.size(), 4u);
    const auto a = r->jobs[0].id, b = r->jobs[1].id, c = r->jobs[2].id, d = r->jobs[3].id;
    EXPECT_EQ(status(a), job_status::queued);  // the gate is open: the root is ready
    EXPECT_EQ(status(b), job_status::waiting);
    EXPECT_EQ(status(d), job_status::waiting);
    auto dp = get(d).parents;
    std::vector<std::string> want{b, c, outside};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(dp, want);  // the gate is not shown
    EXPECT_FALSE(redis().exists(key("q", "job:" + r->flow_id)));
    run_to_completion("q", a);
    EXPECT_EQ(status(b), job_status::queued);
    EXPECT_EQ(status(c), job_status::queued);
    run_to_completion("q", b);
    run_to_completion("other", c);  // `outside` is still queued there: it completes too
    EXPECT_EQ(status(d), job_status::queued);
    EXPECT_EQ(redis().cmd_int({"HGET", key("q", "meta"), "kids"}), 0);
}

TEST_F(DependencyTest, AFlowThatCannotBeCreatedWholeLeavesNothing) {
    std::vector<flow_job> flow(3);
    for (auto& f : flow) f.spec.queue = "q";
    flow[1].after = {0};
    flow[2].after = {1};
    flow[2].spec.depends_on = {make_job_id(now(), 0)};  // no such job: found only when its turn comes
    auto r = run(broker_->submit_flow(flow, now()));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::unknown_dependency);
    EXPECT_EQ(redis().zcard(key("q", "waiting")), 0);
    EXPECT_EQ(redis().zcard(key("q", "queued")), 0);
    EXPECT_EQ(redis().zcard(key("q", "all")), 0);
    EXPECT_EQ(redis().cmd_int({"LLEN", key("q", "resolved")}), 0);
    EXPECT_EQ(redis().cmd_int({"HGET", key("q", "meta"), "kids"}), 0);
    // Out of order, or asking for a live job by unique_key: refused before anything is made.
    std::vector<flow_job> backwards(2);
    backwards[0].after = {1};
    EXPECT_EQ(run(broker_->submit_flow(backwards, now())).error(), errc::invalid_argument);
    std::vector<flow_job> keyed(1);
    keyed[0].spec.unique_key = "k";
    EXPECT_EQ(run(broker_->submit_flow(keyed, now())).error(), errc::invalid_argument);
}
