// src/store/job_index.cpp
#include "store/job_index.hpp"

#include "store/calls.hpp"
#include "util/ids.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <tuple>

namespace spool::store::job_index {

namespace {

bool parse(std::string_view text, long long& out) {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && ptr == text.data() + text.size();
}

// "<ms>-<seq>" into its two numbers.
bool parse_entry_id(std::string_view text, long long& ms, long long& seq) {
    auto dash = text.find('-');
    return dash != std::string_view::npos && parse(text.substr(0, dash), ms) && parse(text.substr(dash + 1), seq);
}

}  // namespace

bool newer(const position& a, const position& b, bool by_score) {
    if (a.phase != b.phase) return a.phase > b.phase;
    if (a.phase == 1) {
        if (std::tie(a.score, a.seq, a.idx) != std::tie(b.score, b.seq, b.idx))
            return std::tie(a.score, a.seq, a.idx) > std::tie(b.score, b.seq, b.idx);
    } else if (by_score && a.score != b.score) {
        return a.score > b.score;
    }
    return a.id > b.id;
}

std::string encode(const position& p, bool by_score) {
    if (p.phase == 1)
        return "x" + std::to_string(p.score) + "-" + std::to_string(p.seq) + "." + std::to_string(p.idx) + "." + p.id;
    return by_score ? std::to_string(p.score) + "|" + p.id : p.id;
}

std::optional<position> decode(std::string_view c, bool by_score) {
    position p;
    if (c.starts_with('x')) {
        // x<ms>-<seq>.<idx>.<id> (characters a URL query keeps as they are)
        auto dot = c.find('.');
        auto dot2 = dot == std::string_view::npos ? dot : c.find('.', dot + 1);
        if (dot2 == std::string_view::npos || !is_valid_job_id(c.substr(dot2 + 1)) ||
            !parse_entry_id(c.substr(1, dot - 1), p.score, p.seq) || !parse(c.substr(dot + 1, dot2 - dot - 1), p.idx) ||
            p.score < 0 || p.seq < 0 || p.idx < 0)
            return std::nullopt;
        p.phase = 1;
        p.id = std::string{c.substr(dot2 + 1)};
        return p;
    }
    auto bar = c.find('|');
    if (!by_score) {
        if (!is_valid_job_id(c)) return std::nullopt;
        p.id = std::string{c};
        return p;
    }
    if (bar == std::string_view::npos || !is_valid_job_id(c.substr(bar + 1)) || !parse(c.substr(0, bar), p.score))
        return std::nullopt;
    p.id = std::string{c.substr(bar + 1)};
    return p;
}

std::vector<entry> entries(const redis::reply& r) {
    std::vector<entry> out;
    out.reserve(r.elements.size());
    for (const auto& e : r.elements) {
        if (e.elements.size() != 2) continue;
        entry x;
        x.id = e.elements[0].str;
        if (!parse_entry_id(x.id, x.ms, x.seq)) continue;
        const auto& f = e.elements[1].elements;
        x.ids.reserve(f.size() / 2);
        for (std::size_t i = 0; i + 1 < f.size(); i += 2) x.ids.push_back(f[i].str);
        out.push_back(std::move(x));
    }
    return out;
}

asio::awaitable<result<page>> newest(redis::connection& conn, std::string key, std::optional<position> after,
                                     std::size_t want) {
    page out;
    // The entry holding `after` may have older ids left, so it is read again (inclusive).
    std::string end = "+";
    if (after && after->phase == 1) end = std::to_string(after->score) + "-" + std::to_string(after->seq);
    std::size_t count = 4;
    while (out.items.size() < want) {
        auto r = co_await run_cmd(conn, redis::command{"XREVRANGE", key, end, "-", "COUNT", count});
        if (!r) co_return r.error();
        auto got = entries(*r);
        if (got.empty()) {
            out.exhausted = true;
            break;
        }
        for (auto& e : got) {
            for (std::size_t i = e.ids.size(); i-- > 0;) {
                position p{1, e.ms, e.seq, static_cast<long long>(i), std::move(e.ids[i])};
                if (after && after->phase == 1 && !newer(*after, p, true)) continue;
                if (out.items.size() == want) co_return out;  // more is left
                out.items.push_back(std::move(p));
            }
        }
        if (r->elements.size() < count) {
            out.exhausted = true;
            break;
        }
        end = "(" + got.back().id;
        count = std::min<std::size_t>(count * 2, 64);
    }
    co_return out;
}

std::string before(long long ms) { return "(" + std::to_string(std::max(0LL, ms)) + "-0"; }

asio::awaitable<result<void>> read_oldest(redis::connection& conn, std::string key, std::string until,
                                          std::function<asio::awaitable<result<void>>(std::vector<entry>)> step,
                                          std::size_t max_reads) {
    constexpr std::size_t entries_per_read = 32;
    std::string from = "-";
    for (std::size_t reads = 0; reads < max_reads; ++reads) {
        auto r = co_await run_cmd(conn, redis::command{"XRANGE", key, from, until, "COUNT", entries_per_read});
        if (!r) co_return r.error();
        auto got = entries(*r);
        if (got.empty()) break;
        from = "(" + got.back().id;
        auto ok = co_await step(std::move(got));
        if (!ok) co_return ok.error();
        if (r->elements.size() < entries_per_read) break;
    }
    co_return result<void>{};
}

asio::awaitable<result<void>> walk(redis::connection& conn, std::string key, std::string until, std::size_t chunk,
                                   std::function<asio::awaitable<result<void>>(batch)> step) {
    auto per_read = [&](std::vector<entry> got) -> asio::awaitable<result<void>> {
        std::vector<std::string> ids;
        for (auto& e : got)
            for (auto& id : e.ids) ids.push_back(std::move(id));
        for (std::size_t at = 0; at < ids.size(); at += chunk) {
            batch b;
            const auto end = std::min(ids.size(), at + chunk);
            b.ids.assign(std::make_move_iterator(ids.begin() + static_cast<std::ptrdiff_t>(at)),
                         std::make_move_iterator(ids.begin() + static_cast<std::ptrdiff_t>(end)));
            if (end == ids.size())
                for (const auto& e : got) b.entries.push_back(e.id);
            auto ok = co_await step(std::move(b));
            if (!ok) co_return ok.error();
        }
        co_return result<void>{};
    };
    co_return co_await read_oldest(conn, std::move(key), std::move(until), per_read);
}

}  // namespace spool::store::job_index
