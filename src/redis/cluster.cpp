// src/redis/cluster.cpp
#include "redis/cluster.hpp"

#include "redis/cluster_slots.hpp"
#include "redis/reconnect.hpp"
#include "util/log.hpp"

#include <spool/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <utility>

namespace spool::redis::detail {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int max_redirects = 64;
constexpr auto first_retry = 5ms;
constexpr auto max_retry = 250ms;

// A request that never reached a node (no link, or a link we closed because
// the node no longer serves slots): safe to send elsewhere.
bool never_sent(boost::system::error_code ec) {
    return ec == errc::not_connected || ec == errc::shutting_down;
}

}  // namespace

std::shared_ptr<cluster_router> cluster_router::create(asio::any_io_executor ex, connection_options opts) {
    return std::shared_ptr<cluster_router>{new cluster_router{std::move(ex), std::move(opts)}};
}

cluster_router::cluster_router(asio::any_io_executor ex, connection_options opts)
    : ex_{ex}, opts_{std::move(opts)}, slots_(cluster::slot_count), wake_{ex}, pace_{ex} {
    if (opts_.hosts.empty()) opts_.hosts.push_back(endpoint{opts_.host, opts_.port});
}

cluster_router::~cluster_router() = default;

void cluster_router::start() {
    if (started_ || stopped_) return;
    started_ = true;
    asio::co_spawn(ex_, run(), asio::detached);
}

void cluster_router::stop() {
    if (stopped_) return;
    stopped_ = true;
    wake_.cancel();
    pace_.cancel();
    for (auto& n : nodes_) n.conn->stop();
    set_ready(false);
}

std::shared_ptr<connection> cluster_router::node(const endpoint& e) {
    for (auto& n : nodes_)
        if (n.at == e) return n.conn;
    connection_options o = opts_;
    o.host = e.host;
    o.port = e.port;
    o.hosts = {e};
    o.cluster = cluster_mode::off;
    o.sentinel_master.clear();
    o.db = 0;
    // A master that is down fails its requests at once, so they can be re-routed
    // as soon as the map names its successor.
    o.fail_fast_when_down = true;
    o.cluster_node = true;
    auto c = connection::create(ex_, std::move(o));
    c->start();
    nodes_.push_back(node_entry{e, c});
    return c;
}

std::shared_ptr<connection> cluster_router::any_master() {
    if (masters_.empty()) return nullptr;
    for (std::size_t i = 0; i < masters_.size(); ++i) {
        auto& c = masters_[(next_any_ + i) % masters_.size()];
        if (c->is_connected()) {
            next_any_ = (next_any_ + i + 1) % masters_.size();
            return c;
        }
    }
    return masters_[next_any_++ % masters_.size()];
}

std::shared_ptr<connection> cluster_router::route(const command& cmd) {
    auto slot = cluster::slot_of(cmd);
    return slot ? slots_[*slot] : any_master();
}

void cluster_router::want_refresh() {
    refresh_wanted_ = true;
    wake_.cancel();
}

void cluster_router::set_ready(bool r) {
    if (r == ready_) return;
    ready_ = r;
    if (on_state) on_state(r);
}

asio::awaitable<bool> cluster_router::pause(std::chrono::milliseconds d, time_point deadline) {
    auto now = clock_type::now();
    if (stopped_ || now >= deadline) co_return false;
    asio::steady_timer t{ex_};
    t.expires_at(std::min(now + d, deadline));
    co_await t.async_wait(use_tuple);
    co_return !stopped_;
}

asio::awaitable<bool> cluster_router::refresh() {
    // Ask nodes with a live link first (no connect wait), then the seeds, then the rest.
    std::vector<endpoint> order;
    auto add = [&](const endpoint& e) {
        if (std::find(order.begin(), order.end(), e) == order.end()) order.push_back(e);
    };
    for (const auto& n : nodes_)
        if (n.conn->is_connected()) add(n.at);
    for (const auto& h : opts_.hosts) add(h);
    for (const auto& n : nodes_) add(n.at);

    std::string why;  // each node's answer, when none gave a map
    auto note = [&](const endpoint& e, const std::string& answer) {
        why += (why.empty() ? "" : "; ") + host_port(e) + ": " + answer;
    };
    for (const auto& e : order) {
        if (stopped_) co_return false;
        auto c = node(e);
        if (!c->is_connected() && !co_await c->wait_connected(std::min(opts_.connect_timeout, 1000ms))) {
            note(e, c->last_error().empty() ? std::string{"no answer"} : c->last_error());
            continue;
        }
        auto r = co_await c->exec(command{"CLUSTER", "SLOTS"}, std::min(opts_.request_timeout, 2000ms));
        if (stopped_) co_return false;
        std::optional<std::vector<cluster::slot_range>> ranges;
        if (!r)
            note(e, r.error().message());
        else if (r->is_error())
            note(e, r->str);
        else if (!(ranges = cluster::parse_slots(*r, e)) || ranges->empty())
            note(e, "no slots assigned");
        if (!ranges || ranges->empty()) continue;

        std::vector<std::shared_ptr<connection>> slots(cluster::slot_count);
        std::vector<std::shared_ptr<connection>> masters;
        for (const auto& range : *ranges) {
            auto m = node(range.master);
            for (int s = range.first; s <= range.last; ++s) slots[static_cast<std::size_t>(s)] = m;
            if (std::find(masters.begin(), masters.end(), m) == masters.end()) masters.push_back(m);
        }
        slots_ = std::move(slots);
        masters_ = std::move(masters);
        // Links to nodes that serve no slots now (a failed master, a replica seed)
        // are closed; what waited on them is sent again by exec().
        std::vector<node_entry> keep;
        for (auto& n : nodes_) {
            if (std::find(masters_.begin(), masters_.end(), n.conn) != masters_.end())
                keep.push_back(std::move(n));
            else
                n.conn->stop();
        }
        nodes_ = std::move(keep);
        auto gaps = cluster::uncovered(*ranges);
        if (!gaps.empty()) {
            last_error_ =
                "cluster: slots " + gaps + " are not served by any master (map from " + host_port(e) + ")";
            co_return false;
        }
        last_error_.clear();
        co_return true;
    }
    last_error_ = "cluster: no node gave its slot map (" + why + ")";
    co_return false;
}

asio::awaitable<void> cluster_router::run() {
    auto self = shared_from_this();
    backoff retry{opts_.backoff_min, opts_.backoff_max};
    auto log = log::get("redis");
    bool failing = false, loaded = false;
    while (!stopped_) {
        refresh_wanted_ = false;
        bool ok = co_await refresh();
        if (stopped_) break;
        set_ready(ok);
        if (ok) {
            if (failing)
                log->info("cluster: slot map complete again ({} masters)", masters_.size());
            else if (!loaded)
                log->info("cluster: {} masters serve every slot (seeds {})", masters_.size(), describe(opts_));
            loaded = true;
            failing = false;
            retry.reset();
            if (!refresh_wanted_) {
                wake_.expires_after(30s);  // a periodic check; errors ask sooner
                co_await wake_.async_wait(use_tuple);
            }
            // At most one CLUSTER SLOTS per 50 ms, however many requests ask.
            pace_.expires_after(50ms);
            co_await pace_.async_wait(use_tuple);
        } else {
            if (!failing) log->warn("{}", last_error_);
            failing = true;
            wake_.expires_after(std::max(retry.next(), std::chrono::milliseconds{50}));
            co_await wake_.async_wait(use_tuple);
        }
    }
}

asio::awaitable<result<reply>> cluster_router::exec(command cmd, time_point deadline) {
    std::optional<endpoint> ask;
    int redirects = 0;
    auto delay = std::chrono::milliseconds{first_retry};
    auto back_off = [&]() -> asio::awaitable<bool> {
        bool more = co_await pause(delay, deadline);
        delay = std::min(delay * 2, std::chrono::milliseconds{max_retry});
        co_return more;
    };
    for (;;) {
        if (stopped_) co_return make_error_code(errc::shutting_down);
        auto c = ask ? node(*ask) : route(cmd);
        if (!c) {  // no map yet, or the slot has no master
            want_refresh();
            if (!co_await back_off())
                co_return make_error_code(stopped_ ? errc::shutting_down : errc::not_connected);
            continue;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0) co_return make_error_code(errc::timeout);
        result<reply> r = make_error_code(errc::bad_reply);
        if (ask) {
            std::vector<command> two;
            two.emplace_back("ASKING");
            two.push_back(std::as_const(cmd));
            auto rr = co_await c->exec_many(std::move(two), left);
            if (!rr)
                r = rr.error();
            else if (rr->size() == 2)
                r = std::move((*rr)[1]);
            ask.reset();
        } else {
            r = co_await c->exec(std::as_const(cmd), left);
        }
        if (!r) {
            if (stopped_) co_return r;
            if (never_sent(r.error())) {
                want_refresh();
                if (!co_await back_off()) co_return r;
                continue;
            }
            if (r.error() == errc::connection_lost) want_refresh();
            co_return r;
        }
        if (r->is_error()) {
            if (auto to = cluster::parse_redirect(r->str)) {
                if (++redirects > max_redirects) co_return r;
                // Nodes that disagree for a moment (a slot just moved) can send us
                // back and forth: after a couple of hops, let them settle.
                if (redirects > 2 && !co_await back_off()) co_return r;
                if (to->to.host.empty()) to->to.host = c->options().host;
                if (to->ask) {
                    ask = to->to;
                } else {
                    slots_[to->slot] = node(to->to);
                    want_refresh();
                }
                continue;
            }
            if (cluster::is_transient(r->str)) {
                if (r->str.starts_with("CLUSTERDOWN")) want_refresh();
                if (!co_await back_off()) co_return r;
                continue;
            }
        }
        co_return r;
    }
}

asio::awaitable<result<std::vector<reply>>> cluster_router::exec_many(std::vector<command> cmds,
                                                                      time_point deadline) {
    std::vector<reply> out(cmds.size());
    // The node of each command; keyless ones go with their neighbours.
    std::vector<std::shared_ptr<connection>> at(cmds.size());
    std::vector<bool> keyed(cmds.size());
    bool all_routed = true;
    for (std::size_t i = 0; i < cmds.size(); ++i) {
        auto slot = cluster::slot_of(cmds[i]);
        keyed[i] = slot.has_value();
        if (keyed[i]) {
            at[i] = slots_[*slot];
            all_routed = all_routed && at[i];
        }
    }
    for (std::size_t i = 0; i < cmds.size(); ++i) {
        if (keyed[i]) continue;
        for (std::size_t j = i; j-- > 0;)
            if (keyed[j]) {
                at[i] = at[j];
                break;
            }
        if (!at[i])
            for (std::size_t j = i + 1; j < cmds.size(); ++j)
                if (keyed[j]) {
                    at[i] = at[j];
                    break;
                }
        if (!at[i]) at[i] = any_master();
        all_routed = all_routed && at[i];
    }
    if (!all_routed) {
        // No map yet: one by one, each waiting for its route.
        for (std::size_t i = 0; i < cmds.size(); ++i) {
            auto r = co_await exec(std::move(cmds[i]), deadline);
            if (!r) co_return r.error();
            out[i] = std::move(*r);
        }
        co_return out;
    }
    // Runs of consecutive commands for one node go out as one pipeline, in order.
    for (std::size_t i = 0; i < cmds.size();) {
        std::size_t j = i + 1;
        while (j < cmds.size() && at[j] == at[i]) ++j;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0) co_return make_error_code(errc::timeout);
        std::vector<command> group(cmds.begin() + static_cast<std::ptrdiff_t>(i),
                                   cmds.begin() + static_cast<std::ptrdiff_t>(j));
        auto rr = co_await at[i]->exec_many(std::move(group), left);
        if (!rr) {
            if (!never_sent(rr.error()) || stopped_) {
                if (rr.error() == errc::connection_lost) want_refresh();
                co_return rr.error();
            }
            // That node is gone: each command finds its own way.
            for (std::size_t k = i; k < j; ++k) {
                auto r = co_await exec(std::move(cmds[k]), deadline);
                if (!r) co_return r.error();
                out[k] = std::move(*r);
            }
        } else {
            if (rr->size() != j - i) co_return make_error_code(errc::bad_reply);
            for (std::size_t k = i; k < j; ++k) {
                auto& r = (*rr)[k - i];
                if (r.is_error() && (cluster::parse_redirect(r.str) || cluster::is_transient(r.str))) {
                    auto again = co_await exec(std::move(cmds[k]), deadline);
                    if (!again) co_return again.error();
                    out[k] = std::move(*again);
                } else {
                    out[k] = std::move(r);
                }
            }
        }
        i = j;
    }
    co_return out;
}

connection_stats cluster_router::stats() const {
    connection_stats s;
    for (const auto& n : nodes_) {
        auto x = n.conn->stats();
        s.writes += x.writes;
        s.commands += x.commands;
        s.replies += x.replies;
        s.bytes_written += x.bytes_written;
        s.bytes_read += x.bytes_read;
    }
    return s;
}

}  // namespace spool::redis::detail
