// src/store/codec.cpp
#include "store/codec.hpp"

#include <spool/error.hpp>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <zstd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace spool::store::codec {

namespace {

// A JSON array of job ids (the parents/children fields); anything else: none.
std::vector<std::string> id_list(const std::string& text) {
    std::vector<std::string> out;
    boost::system::error_code ec;
    boost::json::parser p;
    p.write(text, ec);
    if (ec) return out;
    auto v = p.release();
    if (!v.is_array()) return out;
    for (const auto& e : v.get_array())
        if (e.is_string()) out.emplace_back(e.get_string());
    return out;
}

long long to_ll(std::string_view s) {
    long long v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

constexpr unsigned char zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

// A validating parser that builds nothing (is_json must not allocate a DOM).
struct null_handler {
    constexpr static std::size_t max_object_size = std::size_t(-1);
    constexpr static std::size_t max_array_size = std::size_t(-1);
    constexpr static std::size_t max_key_size = std::size_t(-1);
    constexpr static std::size_t max_string_size = std::size_t(-1);
    bool on_document_begin(boost::system::error_code&) { return true; }
    bool on_document_end(boost::system::error_code&) { return true; }
    bool on_object_begin(boost::system::error_code&) { return true; }
    bool on_object_end(std::size_t, boost::system::error_code&) { return true; }
    bool on_array_begin(boost::system::error_code&) { return true; }
    bool on_array_end(std::size_t, boost::system::error_code&) { return true; }
    bool on_key_part(std::string_view, std::size_t, boost::system::error_code&) { return true; }
    bool on_key(std::string_view, std::size_t, boost::system::error_code&) { return true; }
    bool on_string_part(std::string_view, std::size_t, boost::system::error_code&) { return true; }
    bool on_string(std::string_view, std::size_t, boost::system::error_code&) { return true; }
    bool on_number_part(std::string_view, boost::system::error_code&) { return true; }
    bool on_int64(std::int64_t, std::string_view, boost::system::error_code&) { return true; }
    bool on_uint64(std::uint64_t, std::string_view, boost::system::error_code&) { return true; }
    bool on_double(double, std::string_view, boost::system::error_code&) { return true; }
    bool on_bool(bool, boost::system::error_code&) { return true; }
    bool on_null(boost::system::error_code&) { return true; }
    bool on_comment_part(std::string_view, boost::system::error_code&) { return true; }
    bool on_comment(std::string_view, boost::system::error_code&) { return true; }
};

}  // namespace

std::string completed_entry(millis ts, millis duration, millis wait, bool compact) {
    if (!compact)
        return R"({"status":"completed","ts":)" + std::to_string(ts) + R"(,"duration_ms":)" + std::to_string(duration) +
               R"(,"wait_ms":)" + std::to_string(wait) + "}";
    return "C" + std::to_string(ts) + " " + std::to_string(duration) + " " +
           std::to_string(wait);
}

std::string start_entry(std::string_view st, int attempt) {
    if (st.size() < 2 || (st.front() != 'S' && st.front() != 'V')) return {};
    const auto sp = st.find(' ');
    if (sp == std::string_view::npos) return {};
    std::string out{st.substr(0, sp)};
    out += ' ';
    out += std::to_string(attempt);
    out += st.substr(sp);
    return out;
}

std::string history_json(std::string stored) {
    if (stored.empty() || stored.front() == '{') return stored;
    const char code = stored.front();
    std::string_view rest{stored};
    rest.remove_prefix(1);
    // The first two numbers; the rest of the text after them (a worker id may hold spaces).
    auto next = [&rest] {
        auto sp = rest.find(' ');
        auto tok = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
        return tok;
    };
    auto ts = next();
    auto a = next();
    auto number = [](std::string_view t) { return t.empty() ? std::string{"0"} : std::to_string(to_ll(t)); };
    switch (code) {
        case 'S':
        case 'V':
            return std::string{R"({"status":")"} + (code == 'S' ? "in_progress" : "validating") +
                   R"(","ts":)" + number(ts) + R"(,"attempt":)" + number(a) +
                   R"(,"worker_id":)" + boost::json::serialize(boost::json::string_view{rest}) + "}";
        case 'C':
            return R"({"status":"completed","ts":)" + number(ts) + R"(,"duration_ms":)" + number(a) +
                   R"(,"wait_ms":)" + number(next()) + "}";
        default:
            return stored;  // not a form this version writes: shown as stored
    }
}

namespace {

// The number (digits) at the front of `text`, 0 when none.
long long leading_number(std::string_view text) {
    std::size_t n = 0;
    while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
    return to_ll(text.substr(0, n));
}

// started_at, worker_id and completed_at of a compact record are its entries'
// (header: S/V and C entries). The latest start counts unless the job went back to
// the queue after it (a release, reclaim or manual retry: a `queued` entry); then,
// and for records without compact starts, the stored fields stand.
void apply_entry_times(job_record& j, std::vector<std::pair<long long, std::string_view>> entries) {
    if (entries.empty()) return;
    std::sort(entries.begin(), entries.end());
    const auto& last = entries.back().second;
    if (j.status == job_status::completed && last.starts_with('C')) j.completed_at = leading_number(last.substr(1));
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
        std::string_view e = it->second;
        if (e.starts_with('S') || e.starts_with('V')) {
            e.remove_prefix(1);
            j.started_at = leading_number(e);
            // S<ts> <attempt> <worker id>: the worker id is the rest after the second space.
            auto sp = e.find(' ');
            if (sp != std::string_view::npos) {
                // `complete` does not store the attempt count of a compact record: its start entry says it.
                j.attempts = std::max(j.attempts, static_cast<int>(leading_number(e.substr(sp + 1))));
                sp = e.find(' ', sp + 1);
            }
            j.worker_id = sp == std::string_view::npos ? std::string{} : std::string{e.substr(sp + 1)};
            return;
        }
        if (e.starts_with(R"({"status":"queued")")) return;
    }
}

}  // namespace

bool is_json(std::string_view text) noexcept {
    boost::json::parse_options opts;
    opts.max_depth = 64;
    boost::json::basic_parser<null_handler> p{opts};
    boost::system::error_code ec;
    auto n = p.write_some(false, text.data(), text.size(), ec);
    return !ec && n == text.size() && p.done();
}

result<job_record> decode_job(const redis::reply& fields, millis now) {
    if (!fields.is_array()) return errc::bad_reply;
    if (fields.elements.empty()) return errc::job_not_found;
    job_record j;
    millis result_expires_at = 0;
    const auto& e = fields.elements;
    // A payload stored in 64-byte pieces: payload, payload+2 .. payload+k (any field order).
    std::vector<std::pair<long long, std::string_view>> payload_pieces;
    // The history entries h1..h<hn> by number (for the times the compact ones carry).
    std::vector<std::pair<long long, std::string_view>> entries;
    long long history = 0;
    std::string_view pending_start;
    // An inline result's stored length: its size when no result_size is stored (a result
    // stored as it is, not compressed).
    std::optional<std::size_t> inline_size;
    for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
        std::string_view k = e[i].str;
        const std::string& v = e[i + 1].str;
        switch (k.empty() ? '\0' : k.front()) {
            case 'a':
                if (k == "attempts") j.attempts = static_cast<int>(to_ll(v));
                break;
            case 'c':
                if (k == "created_at") j.created_at = to_ll(v);
                else if (k == "completed_at") j.completed_at = to_ll(v);
                else if (k == "cancel_requested") j.cancel_requested = v == "1";
                else if (k == "children") j.children = id_list(v);
                break;
            case 'e':
                if (k == "error_message") j.error_message = v;
                break;
            case 'h':
                if (k == "hn") history = to_ll(v);
                else if (k.size() > 1) entries.emplace_back(to_ll(k.substr(1)), v);
                break;
            case 'i':
                if (k == "id") j.id = v;
                break;
            case 'm':
                if (k == "max_retries") j.max_retries = static_cast<int>(to_ll(v));
                break;
            case 'p':
                if (k == "payload") j.payload = v;
                else if (k.starts_with("payload+")) payload_pieces.emplace_back(to_ll(k.substr(8)), v);
                else if (k == "parents") j.parents = id_list(v);
                else if (k == "priority") j.priority = static_cast<int>(to_ll(v));
                else if (k == "progress") j.progress = static_cast<int>(to_ll(v));
                else if (k == "progress_message") j.progress_message = v;
                break;
            case 'q':
                if (k == "queue") j.queue = v;
                break;
            case 'r':
                if (k == "result_size") j.result_size_bytes = static_cast<std::size_t>(to_ll(v));
                else if (k == "result_expires_at") result_expires_at = to_ll(v);
                else if (k == "result" || k.starts_with("result+")) inline_size = inline_size.value_or(0) + v.size();
                break;
            case 's':
                if (k == "status") {
                    auto s = parse_job_status(v);
                    if (!s) return errc::bad_reply;
                    j.status = *s;
                } else if (k == "scheduled_at") {
                    j.scheduled_at = to_ll(v);
                } else if (k == "started_at") {
                    j.started_at = to_ll(v);
                } else if (k == "st") {
                    pending_start = v;
                }
                break;
            case 't':
                if (k == "tenant") j.tenant = v;
                else if (k == "timeout") j.timeout = std::chrono::seconds{to_ll(v)};
                else if (k == "ttl") j.ttl = std::chrono::seconds{to_ll(v)};
                break;
            case 'u':
                if (k == "unique_key") j.unique_key = v;
                break;
            case 'w':
                if (k == "worker_id") j.worker_id = v;
                break;
            default: break;
        }
    }
    std::sort(payload_pieces.begin(), payload_pieces.end());
    for (const auto& [n, piece] : payload_pieces) j.payload += piece;
    // A pending start: the attempt it began, and the entry after the stored ones.
    std::string started;
    if (!pending_start.empty()) {
        started = start_entry(pending_start, ++j.attempts);
        if (!started.empty()) entries.emplace_back(history + 1, started);
    }
    apply_entry_times(j, std::move(entries));
    if (j.result_size_bytes == 0 && inline_size) j.result_size_bytes = *inline_size;
    if (j.status == job_status::completed) {
        // Records of this version leave out what completion implies: progress 100,
        // and the result's expiry (completed_at + ttl).
        j.progress = 100;
        if (result_expires_at == 0) result_expires_at = j.completed_at + std::chrono::milliseconds{j.ttl}.count();
        if (result_expires_at <= now) j.status = job_status::expired;
        else j.result_available = true;
    }
    return j;
}

std::optional<std::string> inline_result(const redis::reply& fields) {
    std::optional<std::string> first;
    std::vector<std::pair<long long, std::string_view>> rest;
    const auto& e = fields.elements;
    for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
        std::string_view k = e[i].str;
        if (k == "result") first = e[i + 1].str;
        else if (k.starts_with("result+")) rest.emplace_back(to_ll(k.substr(7)), e[i + 1].str);
    }
    if (!first) return std::nullopt;
    std::sort(rest.begin(), rest.end());
    for (const auto& [n, piece] : rest) *first += piece;
    return first;
}

std::string_view new_status(const job_spec& s, millis now) noexcept {
    return s.run_at > now ? "scheduled" : "queued";
}

void append_new_record(std::vector<std::string>& out, const job_spec& s, millis now, bool compact) {
    auto put = [&out](std::string_view field, std::string value) {
        out.emplace_back(field);
        out.push_back(std::move(value));
    };
    const auto status = new_status(s, now);
    const bool scheduled = status == "scheduled";
    put("status", std::string{status});
    if (!compact || s.priority != 0) put("priority", std::to_string(s.priority));
    if (!compact || s.max_retries != default_max_retries) put("max_retries", std::to_string(s.max_retries));
    if (!compact || s.timeout != default_job_timeout) put("timeout", std::to_string(s.timeout.count()));
    if (!compact || s.ttl != default_result_ttl) put("ttl", std::to_string(s.ttl.count()));
    put("created_at", std::to_string(now));
    const auto& p = s.payload;
    if (!compact || p.size() <= piece_bytes || p.size() > max_pieced_bytes) {
        put("payload", p);
    } else {
        put("payload", p.substr(0, piece_bytes));
        std::size_t k = 1;
        for (std::size_t at = piece_bytes; at < p.size(); at += piece_bytes)
            put("payload+" + std::to_string(++k), p.substr(at, piece_bytes));
    }
    if (scheduled) put("scheduled_at", std::to_string(s.run_at));
    if (!s.tenant.empty()) put("tenant", s.tenant);
    if (!s.unique_key.empty()) put("unique_key", s.unique_key);
    put("hn", "1");
    if (scheduled) put("h1", R"({"status":"scheduled","ts":)" + std::to_string(now) + "}");
}

std::string encode_result(std::string_view json, std::size_t threshold) {
    if (json.size() <= threshold) return std::string{json};
    std::string out(ZSTD_compressBound(json.size()), '\0');
    auto n = ZSTD_compress(out.data(), out.size(), json.data(), json.size(), 3);
    if (ZSTD_isError(n) || n >= json.size()) return std::string{json};
    out.resize(n);
    return out;
}

result<std::string> decode_result(std::string_view stored) {
    if (stored.size() < 4 || std::memcmp(stored.data(), zstd_magic, 4) != 0) return std::string{stored};
    auto size = ZSTD_getFrameContentSize(stored.data(), stored.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ULL << 31))
        return errc::bad_reply;
    std::string out(size, '\0');
    auto n = ZSTD_decompress(out.data(), out.size(), stored.data(), stored.size());
    if (ZSTD_isError(n)) return errc::bad_reply;
    out.resize(n);
    return out;
}

}  // namespace spool::store::codec
