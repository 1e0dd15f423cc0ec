// src/redis/reply_reader.cpp
// hiredis parses; these object functions build redis::reply values in place.
// The root of each reply lives in a slot owned by the reader (passed to hiredis as
// privdata); every nested element lives inside its parent's `elements`, which is
// sized once when the array header is read, so pointers to elements stay valid.
#include "redis/reply_reader.hpp"

#include <spool/error.hpp>

#include <hiredis/read.h>

#include <new>

namespace spool::redis {

namespace {

reply* slot_of(const redisReadTask* task) {
    if (task->parent) {
        auto* parent = static_cast<reply*>(task->parent->obj);
        return &parent->elements[static_cast<std::size_t>(task->idx)];
    }
    return static_cast<reply*>(task->privdata);
}

void* create_string(const redisReadTask* task, char* s, std::size_t len) {
    reply* r = slot_of(task);
    switch (task->type) {
        case REDIS_REPLY_ERROR:
            r->type = reply::kind::error;
            break;
        case REDIS_REPLY_STATUS:
            r->type = reply::kind::status;
            break;
        default:
            r->type = reply::kind::string;
            break;
    }
    r->str.assign(s, len);
    return r;
}

void* create_array(const redisReadTask* task, int n) {
    reply* r = slot_of(task);
    r->type = reply::kind::array;
    r->elements.resize(static_cast<std::size_t>(n));
    return r;
}

void* create_integer(const redisReadTask* task, long long v) {
    reply* r = slot_of(task);
    r->type = reply::kind::integer;
    r->integer = v;
    return r;
}

void* create_nil(const redisReadTask* task) {
    reply* r = slot_of(task);
    r->type = reply::kind::nil;
    return r;
}

// hiredis frees only roots (a partial reply on error or when the reader goes away),
// and every root is the slot: clearing it is enough.
void free_object(void* obj) { *static_cast<reply*>(obj) = reply{}; }

redisReplyObjectFunctions functions{create_string, create_array, create_integer, create_nil, free_object};

// Keep up to this much buffer between reads instead of hiredis's 16 KiB default,
// so a busy connection does not free and reallocate it on every read.
constexpr std::size_t max_idle_buffer = 1 << 20;

}  // namespace

reply_reader::reply_reader() { reset(); }

reply_reader::~reply_reader() {
    if (reader_) {
        auto* slot = static_cast<reply*>(reader_->privdata);
        redisReaderFree(reader_);
        delete slot;
    }
}

void reply_reader::reset() {
    if (reader_) {
        auto* slot = static_cast<reply*>(reader_->privdata);
        redisReaderFree(reader_);
        delete slot;
        reader_ = nullptr;
    }
    auto* slot = new reply{};
    reader_ = redisReaderCreateWithFunctions(&functions);
    if (!reader_) {
        delete slot;
        throw std::bad_alloc{};
    }
    reader_->privdata = slot;
    reader_->maxbuf = max_idle_buffer;
}

result<void> reply_reader::feed(std::string_view bytes) {
    if (bytes.empty()) return {};
    if (redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK) return errc::bad_reply;
    return {};
}

result<std::optional<reply>> reply_reader::next() {
    void* obj = nullptr;
    if (redisReaderGetReply(reader_, &obj) != REDIS_OK) return errc::bad_reply;
    if (!obj) return std::optional<reply>{};
    auto* slot = static_cast<reply*>(obj);
    std::optional<reply> out{std::move(*slot)};
    *slot = reply{};
    return out;
}

}  // namespace spool::redis
