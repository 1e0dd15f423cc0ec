// src/store/codec_test.cpp
#include "store/codec.hpp"
#include "store/keys.hpp"

#include <spool/error.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace spool;
using namespace spool::store;

namespace {

redis::reply fields(std::initializer_list<std::pair<const char*, const char*>> kv) {
    redis::reply r;
    r.type = redis::reply::kind::array;
    for (auto [k, v] : kv) {
        r.elements.push_back(redis::reply::make_string(k));
        r.elements.push_back(redis::reply::make_string(v));
    }
    return r;
}

}  // namespace

TEST(Codec, DecodesEveryField) {
    auto j = codec::decode_job(fields({{"id", "abc"},
                                       {"queue", "solve"},
                                       {"status", "in_progress"},
                                       {"priority", "-10"},
                                       {"attempts", "2"},
                                       {"max_retries", "5"},
                                       {"timeout", "60"},
                                       {"ttl", "120"},
                                       {"created_at", "1000"},
                                       {"started_at", "2000"},
                                       {"progress", "40"},
                                       {"progress_message", "step 4"},
                                       {"worker_id", "w1"},
                                       {"tenant", "acme"},
                                       {"payload", "{\"a\":1}"}}),
                               5000);
    ASSERT_TRUE(j.has_value());
    EXPECT_EQ(j->queue, "solve");
    EXPECT_EQ(j->status, job_status::in_progress);
    EXPECT_EQ(j->priority, -10);
    EXPECT_EQ(j->attempts, 2);
    EXPECT_EQ(j->max_retries, 5);
    EXPECT_EQ(j->timeout.count(), 60);
    EXPECT_EQ(j->ttl.count(), 120);
    EXPECT_EQ(j->started_at, 2000);
    EXPECT_EQ(j->progress, 40);
    EXPECT_EQ(j->progress_message, "step 4");
    EXPECT_EQ(j->tenant, "acme");
    EXPECT_EQ(j->payload, "{\"a\":1}");
    EXPECT_FALSE(j->result_available);
}

TEST(Codec, CompletedBecomesExpiredAfterResultTtl) {
    auto live = codec::decode_job(fields({{"status", "completed"}, {"result_expires_at", "5000"}}), 4999);
    ASSERT_TRUE(live.has_value());
    EXPECT_EQ(live->status, job_status::completed);
    EXPECT_TRUE(live->result_available);
    auto gone = codec::decode_job(fields({{"status", "completed"}, {"result_expires_at", "5000"}}), 5000);
    EXPECT_EQ(gone->status, job_status::expired);
    EXPECT_FALSE(gone->result_available);
}

TEST(Codec, EmptyHashIsNotFoundAndBadStatusIsBadReply) {
    redis::reply empty;
    empty.type = redis::reply::kind::array;
    EXPECT_EQ(codec::decode_job(empty, 0).error(), errc::job_not_found);
    EXPECT_EQ(codec::decode_job(fields({{"status", "bogus"}}), 0).error(), errc::bad_reply);
}

TEST(Codec, LargeResultsAreCompressedAndRoundTrip) {
    std::string json = "[";
    for (int i = 0; i < 2000; ++i) json += "{\"shift\":\"morning\",\"employee\":" + std::to_string(i % 7) + "},";
    json.back() = ']';
    auto stored = codec::encode_result(json, 1024);
    EXPECT_LT(stored.size(), json.size() / 4);
    EXPECT_EQ(codec::decode_result(stored).value(), json);
    auto small = codec::encode_result("{\"ok\":true}", 1024);
    EXPECT_EQ(small, "{\"ok\":true}");
    EXPECT_EQ(codec::decode_result(small).value(), "{\"ok\":true}");
}

TEST(Codec, CorruptFrameIsAnError) {
    std::string bad = "\x28\xb5\x2f\xfd garbage";
    EXPECT_FALSE(codec::decode_result(bad).has_value());
}

TEST(Codec, ValidatesJson) {
    EXPECT_TRUE(codec::is_json("{}"));
    EXPECT_TRUE(codec::is_json("[1,2,{\"a\":null}]"));
    EXPECT_TRUE(codec::is_json("42"));
    EXPECT_FALSE(codec::is_json("{"));
    EXPECT_FALSE(codec::is_json("{} trailing"));
    EXPECT_FALSE(codec::is_json(""));
    EXPECT_FALSE(codec::is_json(std::string(100, '[') + std::string(100, ']')));  // depth limit
}

TEST(Keys, ShareTheQueueHashTag) {
    keys k{"spool"};
    EXPECT_EQ(k.queued("solve"), "spool:{q:solve}:queued");
    EXPECT_EQ(k.job("solve", "id1"), "spool:{q:solve}:job:id1");
    EXPECT_EQ(k.events("solve", "id1"), "spool:{q:solve}:events:id1");
}

TEST(Keys, ScoresOrderByPriorityThenTime) {
    EXPECT_LT(queued_score(10, 2'000'000'000'000), queued_score(0, 1'800'000'000'000));
    EXPECT_LT(queued_score(0, 1'800'000'000'000), queued_score(0, 1'800'000'000'001));
    EXPECT_LT(queued_score(max_priority, 1'800'000'000'000), queued_score(min_priority, 1'704'067'200'000));
    // Exact as a double: the biggest score stays under 2^53.
    EXPECT_LT(queued_score(min_priority, score_epoch_ms + (1LL << 42) - 1), 1LL << 53);
}

TEST(Codec, CompactHistoryEntriesExpandToTheirJson) {
    EXPECT_EQ(codec::history_json("S1733250000100 2 host-1 \"x\""),
              R"({"status":"in_progress","ts":1733250000100,"attempt":2,"worker_id":"host-1 \"x\""})");
    EXPECT_EQ(codec::history_json("V17 1 w"), R"({"status":"validating","ts":17,"attempt":1,"worker_id":"w"})");
    auto c = codec::completed_entry(millis{1733250000200}, millis{100}, millis{5});
    EXPECT_EQ(c, "C1733250000200 100 5");
    EXPECT_LE(c.size(), 64u);
    EXPECT_EQ(codec::history_json(c), R"({"status":"completed","ts":1733250000200,"duration_ms":100,"wait_ms":5})");
    // JSON entries (other statuses, earlier versions) and unfinished ones pass through.
    EXPECT_EQ(codec::history_json(R"({"status":"failed","ts":1})"), R"({"status":"failed","ts":1})");
    EXPECT_EQ(codec::history_json(""), "");
}

TEST(Codec, JoinsAPayloadStoredInPiecesInAnyFieldOrder) {
    auto j = codec::decode_job(fields({{"status", "queued"},
                                       {"payload+3", "c\"}"},
                                       {"payload", "{\"a\":\"a"},
                                       {"pk", "3"},
                                       {"payload+2", "bbb"}}),
                               millis{0});
    ASSERT_TRUE(j);
    EXPECT_EQ(j->payload, "{\"a\":\"abbbc\"}");
}

namespace {

// append_new_record's fields, as an HGETALL reply would carry them.
redis::reply new_record(const job_spec& s, millis now, bool compact) {
    std::vector<std::string> flat;
    codec::append_new_record(flat, s, now, compact);
    redis::reply r;
    r.type = redis::reply::kind::array;
    for (auto& f : flat) r.elements.push_back(redis::reply::make_string(f));
    return r;
}

std::vector<std::string> names_of(const redis::reply& r) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < r.elements.size(); i += 2) out.push_back(r.elements[i].str);
    return out;
}

bool has(const std::vector<std::string>& names, const char* name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

TEST(Codec, ANewCompactRecordLeavesOutDefaultsAndReadsBackWhole) {
    job_spec s;
    s.payload = R"({"s":")" + std::string(150, 'x') + R"("})";  // 158 bytes: three pieces
    auto r = new_record(s, 5000, true);
    auto names = names_of(r);
    for (const char* absent : {"priority", "max_retries", "timeout", "ttl", "h1", "scheduled_at", "tenant"})
        EXPECT_FALSE(has(names, absent)) << absent;
    EXPECT_TRUE(has(names, "payload+3"));
    for (std::size_t i = 1; i < r.elements.size(); i += 2) EXPECT_LE(r.elements[i].str.size(), 64u);
    auto j = codec::decode_job(r, 6000).value();
    EXPECT_EQ(j.status, job_status::queued);
    EXPECT_EQ(j.payload, s.payload);
    EXPECT_EQ(j.priority, 0);
    EXPECT_EQ(j.max_retries, default_max_retries);
    EXPECT_EQ(j.timeout, default_job_timeout);
    EXPECT_EQ(j.ttl, default_result_ttl);
    EXPECT_EQ(j.created_at, 5000);
}

TEST(Codec, ANewRecordKeepsLimitsOffTheirDefaults) {
    job_spec s;
    s.priority = 7;
    s.max_retries = 0;
    s.timeout = std::chrono::seconds{60};
    s.ttl = std::chrono::seconds{120};
    s.run_at = 9000;
    s.tenant = "acme";
    s.unique_key = "k1";
    auto r = new_record(s, 5000, true);
    auto names = names_of(r);
    EXPECT_TRUE(has(names, "h1"));  // a scheduled job stores its first entry
    auto j = codec::decode_job(r, 6000).value();
    EXPECT_EQ(j.status, job_status::scheduled);
    EXPECT_EQ(j.priority, 7);
    EXPECT_EQ(j.max_retries, 0);
    EXPECT_EQ(j.timeout, std::chrono::seconds{60});
    EXPECT_EQ(j.ttl, std::chrono::seconds{120});
    EXPECT_EQ(j.scheduled_at, 9000);
    EXPECT_EQ(j.tenant, "acme");
    EXPECT_EQ(j.unique_key, "k1");
}

TEST(Codec, ANewClassicRecordWritesEveryFieldWhole) {
    job_spec s;
    s.payload = R"({"s":")" + std::string(150, 'x') + R"("})";
    auto names = names_of(new_record(s, 5000, false));
    for (const char* present : {"priority", "max_retries", "timeout", "ttl", "payload", "hn"})
        EXPECT_TRUE(has(names, present)) << present;
    EXPECT_FALSE(has(names, "payload+2"));
    EXPECT_FALSE(has(names, "pk"));
}

TEST(Codec, TimesOfACompactRecordComeFromItsEntries) {
    // A retried job: first attempt failed on w1, the second completed on "w 2" (a worker id with a space).
    auto j = codec::decode_job(fields({{"status", "completed"},
                                       {"created_at", "1000"},
                                       {"hn", "5"},
                                       {"h2", "S2000 1 w1"},
                                       {"h3", R"({"status":"scheduled","ts":2500})"},
                                       {"h5", "C4000 900 3000"},
                                       {"h4", "S3100 2 w 2"}}),
                               millis{5000});
    ASSERT_TRUE(j);
    EXPECT_EQ(j->started_at, 3100);
    EXPECT_EQ(j->worker_id, "w 2");
    EXPECT_EQ(j->completed_at, 4000);
    EXPECT_TRUE(j->result_available);  // completed_at + the default ttl is later than now
    // A compact entry wins over a stale field; a job back in the queue since its start shows none.
    auto stale = codec::decode_job(fields({{"status", "in_progress"}, {"started_at", "0"}, {"hn", "4"},
                                           {"h2", R"({"status":"queued","ts":1500})"}, {"h4", "V2100 1 w9"},
                                           {"h3", R"({"status":"queued","ts":1900})"}}),
                                   millis{5000});
    ASSERT_TRUE(stale);
    EXPECT_EQ(stale->started_at, 2100);
    EXPECT_EQ(stale->worker_id, "w9");
    auto requeued = codec::decode_job(fields({{"status", "queued"}, {"hn", "3"}, {"h2", "S2000 1 w1"},
                                              {"h3", R"({"status":"queued","ts":2600})"}}),
                                      millis{5000});
    ASSERT_TRUE(requeued);
    EXPECT_EQ(requeued->started_at, 0);
    EXPECT_EQ(requeued->worker_id, "");
    // Records without compact entries keep their fields.
    auto classic = codec::decode_job(fields({{"status", "completed"}, {"started_at", "2000"}, {"worker_id", "old"},
                                             {"completed_at", "2500"}, {"hn", "3"},
                                             {"h3", R"({"status":"completed","ts":2500})"}}),
                                     millis{5000});
    ASSERT_TRUE(classic);
    EXPECT_EQ(classic->started_at, 2000);
    EXPECT_EQ(classic->worker_id, "old");
    EXPECT_EQ(classic->completed_at, 2500);
}

TEST(Codec, InlineResultJoinsItsPieces) {
    EXPECT_FALSE(codec::inline_result(fields({{"status", "completed"}})));
    auto r = codec::inline_result(fields({{"result+3", "c"}, {"result", "a"}, {"rk", "3"}, {"result+2", "b"}}));
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, "abc");
}
