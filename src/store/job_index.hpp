// src/store/job_index.hpp
// Reading the job indexes a listing walks (docs/keys.md, "Job indexes"): the
// `jobs` and `done` streams (one entry per script call, its fields the job ids),
// then the sorted sets of the classic layout and earlier versions. Positions are
// ordered newest first across both and across queues, and make the cursors.
#pragma once

#include "redis/connection.hpp"
#include "util/asio.hpp"

#include <spool/result.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool::store::job_index {

// A job's place in a listing. Every stream place (phase 1) is newer than every
// sorted-set place (phase 0): a stream holds the jobs of this layout, the set
// those of the one before (or of a classic-layout process).
struct position {
    int phase = 0;
    long long score = 0;  // set: the member's score; stream: the entry's ms
    long long seq = 0;    // stream: the entry's sequence number
    long long idx = 0;    // stream: the id's place among its entry's fields
    std::string id;
};

// True when `a` lists before `b`. A set ordered by member (`all`) compares ids
// only (`by_score` false).
bool newer(const position& a, const position& b, bool by_score);

// Cursor text: `x<ms>-<seq>.<idx>.<id>` in a stream, else `<score>|<id>` or `<id>`
// (the cursors of versions before the streams, still accepted).
std::string encode(const position& p, bool by_score);
std::optional<position> decode(std::string_view cursor, bool by_score);

// One entry of an XRANGE / XREVRANGE reply.
struct entry {
    std::string id;  // <ms>-<seq>
    long long ms = 0;
    long long seq = 0;
    std::vector<std::string> ids;  // its field names, in order
};
std::vector<entry> entries(const redis::reply& r);

struct page {
    std::vector<position> items;  // newest first
    bool exhausted = false;       // nothing older in the stream
};
// Up to `want` ids of the stream `key`, newest first, each older than `after`
// (all of them when there is none). Entries are read a few at a time (a bulk
// submit's entry holds up to 500 ids).
asio::awaitable<result<page>> newest(redis::connection& conn, std::string key, std::optional<position> after,
                                     std::size_t want);

// The XRANGE end that stops before every entry stamped at `ms` or later.
std::string before(long long ms);

// Reads the entries of stream `key` up to `until` (an XRANGE end), oldest first, 32
// at a time (at most `max_reads` reads), handing each read to `step`. Stops at the
// first error.
asio::awaitable<result<void>> read_oldest(redis::connection& conn, std::string key, std::string until,
                                          std::function<asio::awaitable<result<void>>(std::vector<entry>)> step,
                                          std::size_t max_reads = SIZE_MAX);

// One step of a walk over a stream's oldest entries: up to a chunk of their ids
// and, with the last chunk of each read, the ids of the entries read (whose jobs
// have then all been handed over).
struct batch {
    std::vector<std::string> ids;
    std::vector<std::string> entries;
};
// Reads the entries of stream `key` up to `until` (an XRANGE end), oldest first,
// 32 at a time, and hands their job ids to `step` in chunks of `chunk`. Stops at
// the first error.
asio::awaitable<result<void>> walk(redis::connection& conn, std::string key, std::string until, std::size_t chunk,
                                   std::function<asio::awaitable<result<void>>(batch)> step);

}  // namespace spool::store::job_index
