// app/client_commands.cpp
#include "app/client_commands.hpp"

#include "app/http_client.hpp"
#include "app/output.hpp"
#include "app/sse_parser.hpp"

#include "util/time_format.hpp"

#include <spool/job.hpp>

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

namespace spool::cli {

namespace {

namespace json = boost::json;
using boost::beast::http::verb;

constexpr std::string_view default_server = "http://127.0.0.1:8080";
// Per chunk of an event stream; the server's keep-alives arrive well within it.
constexpr std::chrono::seconds sse_idle_timeout{60};
constexpr int max_reconnect_failures = 12;

void error_line(std::string_view msg) { std::cerr << "spool: " << msg << '\n' << std::flush; }

// Thrown by a command to end with `code` after its message was printed.
struct command_exit {
    int code;
};

struct common_options {
    std::string server{default_server};
    std::string api_key;
    bool json = false;
};

void add_common(CLI::App* sub, common_options& o) {
    sub->add_option("--server", o.server, "Spool API base URL")
        ->envname("SPOOL_SERVER")
        ->capture_default_str();
    sub->add_option("--api-key", o.api_key, "API key, sent as a bearer token")->envname("SPOOL_API_KEY");
    sub->add_flag("--json", o.json, "Print the server's JSON instead of text");
}

// Runs one command body: CLI::RuntimeError(code) for a non-zero outcome, and no
// exception of any other kind escapes.
void run_command(const std::function<void()>& body) {
    int code = exit_ok;
    try {
        body();
    } catch (const command_exit& e) {
        code = e.code;
    } catch (const CLI::Error&) {
        throw;
    } catch (const std::exception& e) {
        error_line(e.what());
        code = exit_failed;
    }
    std::cout.flush();
    if (code != exit_ok) throw CLI::RuntimeError(code);
}

[[noreturn]] void fail(int code, std::string_view msg) {
    error_line(msg);
    throw command_exit{code};
}

std::string job_path(std::string_view id) { return "/api/jobs/" + url_encode(id); }

const json::value* member(const json::value& v, std::string_view key) {
    if (!v.is_object()) return nullptr;
    return v.get_object().if_contains(key);
}

std::string string_member(const json::value& v, std::string_view key) {
    auto* m = member(v, key);
    return m && m->is_string() ? std::string{m->get_string()} : std::string{};
}

std::optional<double> number_member(const json::value& v, std::string_view key) {
    auto* m = member(v, key);
    if (!m) return std::nullopt;
    if (m->is_int64()) return static_cast<double>(m->get_int64());
    if (m->is_uint64()) return static_cast<double>(m->get_uint64());
    if (m->is_double()) return m->get_double();
    return std::nullopt;
}

// The message of an API error body {"error":{"code","message"}}, or a fallback.
std::string api_error_text(const http_response& r) {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    std::string message, code;
    if (!ec) {
        if (auto* e = member(v, "error")) {
            message = string_member(*e, "message");
            code = string_member(*e, "code");
        }
    }
    if (message.empty()) {
        std::string body = r.body.substr(0, 200);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        message = "the server answered HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": " + body);
        return message;
    }
    std::string out = message + " (HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code) + ")";
    if (r.status == 401) out += "; pass --api-key or set SPOOL_API_KEY";
    if (r.status == 429 && !r.retry_after.empty()) out += "; retry after " + r.retry_after + " s";
    return out;
}

// One server: builds the client from the common options and turns transport
// failures and refusals into messages and exit codes.
class api {
public:
    explicit api(const common_options& o) : opts_{o}, client_{make_client(o)} {}

    http_client& client() noexcept { return client_; }
    const common_options& options() const noexcept { return opts_; }

    [[noreturn]] void unreachable(const boost::system::error_code& ec) const {
        fail(exit_unreachable,
             "cannot reach " + opts_.server + ": " + describe_transport_error(ec, client_.timeout()));
    }

    // The 2xx response; anything else ends the command (1 for a refusal, 3 when unreachable).
    http_response call(verb method, const std::string& target, std::string body = {}) {
        auto r = client_.request(method, target, std::move(body));
        if (!r) unreachable(r.error());
        if (r->status / 100 != 2) fail(exit_failed, api_error_text(*r));
        return std::move(*r);
    }

    // Any HTTP response, or nullopt when the server could not be reached; never ends the command.
    std::optional<http_response> fetch(verb method, const std::string& target) {
        auto r = client_.request(method, target);
        if (!r) return std::nullopt;
        return std::move(*r);
    }
    // A 2xx response, or nullopt.
    std::optional<http_response> try_call(verb method, const std::string& target) {
        auto r = fetch(method, target);
        if (!r || r->status / 100 != 2) return std::nullopt;
        return r;
    }

private:
    static http_client make_client(const common_options& o) {
        auto url = parse_server_url(o.server);
        if (!url) {
            if (url.error() == boost::system::errc::protocol_not_supported)
                fail(exit_usage, "unsupported --server " + o.server + ": only http:// is supported");
            fail(exit_usage, "invalid --server URL: " + o.server);
        }
        return http_client{*url, o.api_key};
    }

    common_options opts_;
    http_client client_;
};

json::value parse_body(const http_response& r) {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec) fail(exit_failed, "the server sent invalid JSON (" + ec.message() + ")");
    return v;
}

void print_raw(const http_response& r) {
    std::cout << r.body;
    if (r.body.empty() || r.body.back() != '\n') std::cout << '\n';
}

// The rows of a listing: the body itself when it is an array, else its `key` member.
const json::array& rows_of(const json::value& body, std::string_view key) {
    static const json::array empty;
    if (body.is_array()) return body.get_array();
    if (auto* m = member(body, key); m && m->is_array()) return m->get_array();
    return empty;
}

std::string cell(const json::value& row, std::string_view key) {
    auto* m = member(row, key);
    return m ? cell_text(*m) : "-";
}

// ---- following a job (watch, submit --wait) ------------------------------------------

enum class display_mode { bar, lines, json };

class job_display {
public:
    job_display(std::ostream& out, display_mode mode) : out_{out}, mode_{mode} {}

    void event(const sse_event& e) {
        boost::system::error_code ec;
        auto v = json::parse(e.data, ec);
        if (ec || !v.is_object()) {
            if (mode_ != display_mode::bar) out_ << e.data << '\n' << std::flush;
            return;
        }
        update(v);
        switch (mode_) {
            case display_mode::json:
                out_ << e.data << '\n';
                break;
            case display_mode::bar:
                draw();
                break;
            case display_mode::lines: {
                if (e.type == "progress") {
                    out_ << "progress " << percent_ << "%";
                    if (!message_.empty()) out_ << ' ' << message_;
                } else {
                    out_ << "status " << (status_.empty() ? "?" : status_);
                    if (auto err = string_member(v, "error_message"); !err.empty())
                        out_ << ' ' << err;
                    else if (auto err2 = string_member(v, "error"); !err2.empty())
                        out_ << ' ' << err2;
                }
                out_ << '\n';
                break;
            }
        }
        out_ << std::flush;
    }

    // A status learned outside the stream (the stream ended before its terminal event).
    void final_status(const json::value& record) {
        update(record);
        if (mode_ == display_mode::bar)
            draw();
        else if (mode_ == display_mode::lines)
            out_ << "status " << status_ << '\n';
        else
            out_ << json::serialize(record) << '\n';
        out_ << std::flush;
    }

    void finish() {
        if (drawn_) out_ << '\n' << std::flush;
        drawn_ = false;
    }

    bool terminal() const {
        auto s = parse_job_status(status_);
        return s && is_terminal(*s);
    }
    const std::string& status() const noexcept { return status_; }

private:
    void update(const json::value& v) {
        if (auto s = string_member(v, "status"); !s.empty()) status_ = s;
        if (auto p = number_member(v, "progress"))
            percent_ = static_cast<int>(std::lround(std::clamp(*p, 0.0, 100.0)));
        if (auto m = string_member(v, "message"); !m.empty())
            message_ = m;
        else if (auto step = number_member(v, "step")) {
            auto total = number_member(v, "steps");
            if (!total) total = number_member(v, "total_steps");
            message_ = "step " + std::to_string(static_cast<long long>(*step)) +
                       (total ? "/" + std::to_string(static_cast<long long>(*total)) : "");
        }
        if (status_ == "completed") percent_ = 100;
    }

    void draw() {
        out_ << progress_redraw(percent_, message_, status_);
        drawn_ = true;
    }

    std::ostream& out_;
    display_mode mode_;
    std::string status_;
    int percent_ = 0;
    std::string message_;
    bool drawn_ = false;
};

// Follows the job's event stream until a terminal status, reconnecting with
// Last-Event-ID when the connection drops. Returns the final status.
std::string follow_job(api& a, const std::string& id, job_display& display) {
    sse_parser parser;
    int failures = 0;
    bool connected_once = false;
    const std::string target = job_path(id) + "/events";
    for (;;) {
        http_headers headers;
        if (!parser.last_event_id().empty()) headers.emplace_back("Last-Event-ID", parser.last_event_id());
        bool terminal = false;
        bool got_events = false;
        auto on_data = [&](std::string_view chunk) {
            // The whole chunk counts (the parser's last id already covers it): a
            // terminal event followed by more is an old one of a retried job.
            for (const auto& e : parser.feed(chunk)) {
                got_events = true;
                display.event(e);
            }
            terminal = display.terminal();
            return !terminal;
        };
        auto r = a.client().stream(target, headers, on_data, sse_idle_timeout);
        parser.reset_pending();
        if (terminal) {
            // A replay from the start can hold an old terminal event of a job that
            // was retried since: only the job's current status ends the watch.
            auto st = a.fetch(verb::get, job_path(id));
            boost::system::error_code ec;
            auto record = st && st->status / 100 == 2 ? json::parse(st->body, ec) : json::value{};
            auto now = ec ? std::optional<job_status>{} : parse_job_status(string_member(record, "status"));
            // A server that keeps disagreeing with itself gets the benefit of the doubt, slowly.
            if (!now || is_terminal(*now) || ++failures > max_reconnect_failures) break;
            connected_once = true;
            std::this_thread::sleep_for(
                std::chrono::milliseconds{std::min(100L << std::min(failures, 5), 2000L)});
            continue;  // resume after that old event
        }
        if (r && r->status / 100 != 2) {
            display.finish();
            fail(exit_failed, api_error_text(*r));
        }
        if (!r && !connected_once) {
            display.finish();
            a.unreachable(r.error());
        }
        connected_once = true;
        // A clean end of the stream (not a drop) before the terminal event.
        bool clean_end = r && !r->stream_error;
        // The stream ended or dropped before the terminal event: maybe it was missed.
        auto st = a.fetch(verb::get, job_path(id));
        if (st && st->status == 404) {
            display.finish();
            fail(exit_failed, "job " + id + " no longer exists (cancelled and deleted?)");
        }
        if (st && st->status / 100 == 2) {
            failures = 0;  // the server is fine; the job is just quiet
            boost::system::error_code ec;
            auto record = json::parse(st->body, ec);
            auto status =
                ec ? std::optional<job_status>{} : parse_job_status(string_member(record, "status"));
            if (status && is_terminal(*status)) {
                display.final_status(record);
                break;
            }
            if (clean_end && got_events) continue;  // resume at once
        } else if (++failures > max_reconnect_failures) {
            display.finish();
            if (!r) a.unreachable(r.error());
            if (r->stream_error) a.unreachable(r->stream_error);
            if (st) fail(exit_failed, api_error_text(*st));
            fail(exit_unreachable, "lost the event stream of job " + id);
        }
        long base = parser.retry_ms().value_or(250);
        long delay = std::min<long>(base << std::min(failures, 5), 5000);
        std::this_thread::sleep_for(std::chrono::milliseconds{delay});
    }
    display.finish();
    return display.status();
}

// Prints why the job did not complete and returns 1; 0 when it completed.
int outcome(api& a, const std::string& id, const std::string& status) {
    if (status == "completed") return exit_ok;
    std::string why;
    if (auto st = a.try_call(verb::get, job_path(id))) {
        boost::system::error_code ec;
        auto record = json::parse(st->body, ec);
        if (!ec) why = string_member(record, "error_message");
    }
    error_line("job " + id + " " + status + (why.empty() ? "" : ": " + why));
    return exit_failed;
}

// ---- submit ---------------------------------------------------------------------------

struct submit_options : common_options {
    std::string payload;
    std::string queue{default_queue};
    std::string priority;
    std::string delay;
    std::string at;
    int max_retries = 0;
    std::string timeout;
    std::string ttl;
    std::string unique_key;
    std::string depends_on;  // comma-separated ids
    std::string on_parent_failure;
    bool wait = false;
    CLI::Option* payload_opt = nullptr;
    CLI::Option* priority_opt = nullptr;
    CLI::Option* delay_opt = nullptr;
    CLI::Option* at_opt = nullptr;
    CLI::Option* max_retries_opt = nullptr;
    CLI::Option* timeout_opt = nullptr;
    CLI::Option* ttl_opt = nullptr;
    CLI::Option* unique_key_opt = nullptr;
};

std::string read_payload(const submit_options& o) {
    if (!o.payload_opt || o.payload_opt->count() == 0) return "{}";
    if (o.payload == "-") {
        std::ostringstream ss;
        ss << std::cin.rdbuf();
        return ss.str();
    }
    if (o.payload.starts_with('@')) {
        std::string path = o.payload.substr(1);
        std::ifstream in{path, std::ios::binary};
        if (!in) fail(exit_usage, "cannot read payload file " + path + ": " + std::strerror(errno));
        std::ostringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    return o.payload;
}

std::int64_t whole_seconds(std::chrono::milliseconds d) { return (d.count() + 999) / 1000; }

void submit(const submit_options& o) {
    std::string text = read_payload(o);
    boost::system::error_code ec;
    json::value payload = json::parse(text, ec);
    if (ec) {
        std::string shown = text.substr(0, 60);
        std::replace(shown.begin(), shown.end(), '\n', ' ');
        fail(exit_usage, "the payload is not valid JSON (" + ec.message() + "): " + shown +
                             (text.size() > 60 ? "..." : "") + "\n  pass inline JSON, @file or - (stdin)");
    }
    json::object body;
    body["queue"] = o.queue;
    body["payload"] = std::move(payload);
    if (o.priority_opt->count()) {
        auto p = parse_priority(o.priority);
        if (!p)
            fail(exit_usage, "--priority must be an integer or high, normal, low (got " + o.priority + ")");
        body["priority"] = *p;
    }
    if (o.delay_opt->count()) {
        auto d = parse_duration(o.delay);
        if (!d) fail(exit_usage, "--delay must be a duration like 500ms, 10s, 2m (got " + o.delay + ")");
        body["delay_ms"] = d->count();
    }
    if (o.at_opt->count()) {
        if (!parse_iso8601(o.at))
            fail(exit_usage, "--at must be an ISO 8601 time like 2030-01-01T12:00:00Z (got " + o.at + ")");
        body["scheduled_at"] = o.at;
    }
    if (o.max_retries_opt->count()) {
        if (o.max_retries < 0) fail(exit_usage, "--max-retries must be 0 or more");
        body["max_retries"] = o.max_retries;
    }
    if (o.timeout_opt->count()) {
        auto d = parse_duration(o.timeout);
        if (!d || d->count() == 0)
            fail(exit_usage, "--timeout must be a positive duration like 30s, 5m (got " + o.timeout + ")");
        body["timeout_seconds"] = whole_seconds(*d);
    }
    if (o.ttl_opt->count()) {
        auto d = parse_duration(o.ttl);
        if (!d || d->count() == 0)
            fail(exit_usage, "--ttl must be a positive duration like 1h, 7d (got " + o.ttl + ")");
        body["ttl_seconds"] = whole_seconds(*d);
    }
    if (o.unique_key_opt->count()) body["unique_key"] = o.unique_key;
    if (!o.depends_on.empty()) {
        json::array parents;
        std::string_view rest = o.depends_on;
        while (!rest.empty()) {
            auto comma = rest.find(',');
            auto id = rest.substr(0, comma);
            if (!id.empty()) parents.emplace_back(id);
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
        body["depends_on"] = std::move(parents);
    }
    if (!o.on_parent_failure.empty()) body["on_parent_failure"] = o.on_parent_failure;

    api a{o};
    auto r = a.call(verb::post, "/api/jobs", json::serialize(body));
    auto reply = parse_body(r);
    std::string id = string_member(reply, "job_id");
    if (id.empty()) fail(exit_failed, "the server's answer has no job_id: " + r.body.substr(0, 200));
    if (r.status == 200)
        error_line("a live job with unique key '" + o.unique_key + "' exists: " + id +
                   " (not submitted again)");
    if (!o.wait) {
        if (o.json)
            print_raw(r);
        else
            std::cout << id << '\n';
        return;
    }

    // --wait: progress on stderr, the result (only) on stdout, so the output pipes.
    bool tty = ::isatty(STDERR_FILENO) == 1;
    std::cerr << "job " << id << " submitted to queue " << o.queue << '\n';
    job_display display{std::cerr, tty ? display_mode::bar : display_mode::lines};
    auto status = follow_job(a, id, display);
    if (int code = outcome(a, id, status); code != exit_ok) {
        if (o.json) {
            if (auto st = a.try_call(verb::get, job_path(id))) print_raw(*st);
        }
        throw command_exit{code};
    }
    auto result = a.call(verb::get, job_path(id) + "/result");
    print_raw(result);
}

// ---- the other commands -------------------------------------------------------------

struct id_options : common_options {
    std::string id;
};

void status(const id_options& o) {
    api a{o};
    auto r = a.call(verb::get, job_path(o.id));
    if (o.json) return print_raw(r);
    auto v = parse_body(r);
    if (!v.is_object()) return print_raw(r);
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& kv : v.get_object()) {
        std::string value = cell_text(kv.value());
        if (kv.key() == "progress" && kv.value().is_number()) value += "%";
        rows.emplace_back(std::string{kv.key()}, std::move(value));
    }
    std::cout << key_values(rows);
}

void result(const id_options& o) {
    api a{o};
    print_raw(a.call(verb::get, job_path(o.id) + "/result"));
}

void cancel(const id_options& o) {
    api a{o};
    auto r = a.call(verb::delete_, job_path(o.id));
    if (o.json) return print_raw(r);
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    auto msg = ec ? std::string{} : string_member(v, "message");
    std::cout << (msg.empty() ? "job " + o.id + " cancelled" : msg) << '\n';
}

void retry(const id_options& o) {
    api a{o};
    auto r = a.call(verb::post, job_path(o.id) + "/retry");
    if (o.json) return print_raw(r);
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    auto msg = ec ? std::string{} : string_member(v, "message");
    std::cout << (msg.empty() ? "job " + o.id + " requeued" : msg) << '\n';
}

void watch(const id_options& o) {
    api a{o};
    bool tty = ::isatty(STDOUT_FILENO) == 1;
    job_display display{std::cout, o.json ? display_mode::json
                                   : tty  ? display_mode::bar
                                          : display_mode::lines};
    auto status = follow_job(a, o.id, display);
    if (int code = outcome(a, o.id, status); code != exit_ok) throw command_exit{code};
}

struct list_options : common_options {
    std::string queue;
    std::string status;
    int limit = 0;
    std::string cursor;
};

void list(const list_options& o) {
    if (!o.status.empty() && !parse_job_status(o.status))
        fail(exit_usage,
             "unknown --status " + o.status +
                 " (queued, scheduled, validating, in_progress, completed, failed, cancelled, expired)");
    std::string query;
    auto add = [&](std::string_view k, const std::string& v) {
        if (v.empty()) return;
        query += (query.empty() ? "?" : "&");
        query += k;
        query += '=';
        query += url_encode(v);
    };
    add("queue", o.queue);
    add("status", o.status);
    add("limit", o.limit > 0 ? std::to_string(o.limit) : std::string{});
    add("cursor", o.cursor);
    api a{o};
    auto r = a.call(verb::get, "/api/jobs" + query);
    if (o.json) return print_raw(r);
    auto v = parse_body(r);
    const auto& jobs = rows_of(v, "jobs");
    if (jobs.empty()) {
        std::cout << "no jobs\n";
    } else {
        table t{{"ID", "QUEUE", "STATUS", "PRIORITY", "ATTEMPTS", "CREATED"}};
        for (const auto& j : jobs)
            t.add_row({cell(j, "job_id"), cell(j, "queue"), cell(j, "status"), cell(j, "priority"),
                       cell(j, "attempts"), cell(j, "created_at")});
        std::cout << t.render();
    }
    if (auto next = string_member(v, "next_cursor"); !next.empty())
        std::cerr << "more: spool list --cursor " << next << '\n';
}

// A queue's count for `state`: in its "depth" object, or at its top level.
std::string depth_cell(const json::value& q, std::string_view state) {
    if (auto* d = member(q, "depth"); d && member(*d, state)) return cell(*d, state);
    return cell(q, state);
}

void queues(const common_options& o) {
    api a{o};
    auto r = a.call(verb::get, "/api/queues");
    if (o.json) return print_raw(r);
    auto v = parse_body(r);
    const auto& rows = rows_of(v, "queues");
    if (rows.empty()) {
        std::cout << "no queues\n";
        return;
    }
    table t{{"QUEUE", "PAUSED", "QUEUED", "SCHEDULED", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"}};
    for (const auto& q : rows) {
        std::string name = member(q, "name") ? cell(q, "name") : cell(q, "queue");
        t.add_row({name, cell(q, "paused"), depth_cell(q, "queued"), depth_cell(q, "scheduled"),
                   depth_cell(q, "in_progress"), depth_cell(q, "completed"), depth_cell(q, "failed"),
                   depth_cell(q, "cancelled")});
    }
    std::cout << t.render();
}

void workers(const common_options& o) {
    api a{o};
    auto r = a.call(verb::get, "/api/workers");
    if (o.json) return print_raw(r);
    auto v = parse_body(r);
    const auto& rows = rows_of(v, "workers");
    if (rows.empty()) {
        std::cout << "no live workers\n";
        return;
    }
    table t{{"ID", "HOST", "PID", "QUEUES", "CONCURRENCY", "RUNNING", "LAST_HEARTBEAT"}};
    for (const auto& w : rows)
        t.add_row({cell(w, "id"), cell(w, "host"), cell(w, "pid"), cell(w, "queues"), cell(w, "concurrency"),
                   cell(w, "running"), cell(w, "last_heartbeat")});
    std::cout << t.render();
}

void stats(const common_options& o) {
    api a{o};
    auto r = a.call(verb::get, "/api/stats");
    if (o.json) return print_raw(r);
    std::cout << json_tree(parse_body(r));
}

template <class Options, class Fn>
void bind(CLI::App* sub, std::shared_ptr<Options> opts, Fn fn) {
    sub->callback([opts, fn] { run_command([&] { fn(*opts); }); });
}

CLI::App* add_id_command(CLI::App& app, const char* name, const char* help, void (*fn)(const id_options&)) {
    auto opts = std::make_shared<id_options>();
    auto* sub = app.add_subcommand(name, help);
    sub->add_option("id", opts->id, "Job id")->required();
    add_common(sub, *opts);
    bind(sub, opts, fn);
    return sub;
}

CLI::App* add_plain_command(CLI::App& app, const char* name, const char* help,
                            void (*fn)(const common_options&)) {
    auto opts = std::make_shared<common_options>();
    auto* sub = app.add_subcommand(name, help);
    add_common(sub, *opts);
    bind(sub, opts, fn);
    return sub;
}

// ---- schedules --------------------------------------------------------------------

struct schedule_options : common_options {
    std::string name;
    std::string cron;
    std::string payload;
    std::string queue;
    std::string tz;
    std::string priority;
    int max_retries = -1;
    std::string timeout;
    std::string ttl;
    std::string catch_up;
    int catch_up_limit = 0;
    std::string overlap;
    bool paused = false;
};

std::string schedule_path(std::string_view name) { return "/api/schedules/" + url_encode(name); }

void schedule_add(const schedule_options& o) {
    json::object body;
    body["name"] = o.name;
    body["cron"] = o.cron;
    if (!o.payload.empty()) {
        std::string text = o.payload;
        if (text == "-" || text.starts_with('@')) {
            std::ostringstream ss;
            if (text == "-") {
                ss << std::cin.rdbuf();
            } else {
                std::ifstream in{text.substr(1), std::ios::binary};
                if (!in)
                    fail(exit_usage,
                         "cannot read payload file " + text.substr(1) + ": " + std::strerror(errno));
                ss << in.rdbuf();
            }
            text = ss.str();
        }
        boost::system::error_code ec;
        auto v = json::parse(text, ec);
        if (ec) fail(exit_usage, "the payload is not valid JSON (" + ec.message() + ")");
        body["payload"] = std::move(v);
    }
    if (!o.queue.empty()) body["queue"] = o.queue;
    if (!o.tz.empty()) body["tz"] = o.tz;
    if (!o.priority.empty()) {
        auto p = parse_priority(o.priority);
        if (!p) fail(exit_usage, "invalid --priority " + o.priority + " (an integer, or high, normal, low)");
        body["priority"] = *p;
    }
    if (o.max_retries >= 0) body["max_retries"] = o.max_retries;
    if (!o.timeout.empty()) {
        auto d = parse_duration(o.timeout);
        if (!d) fail(exit_usage, "invalid --timeout " + o.timeout);
        body["timeout_seconds"] = whole_seconds(*d);
    }
    if (!o.ttl.empty()) {
        auto d = parse_duration(o.ttl);
        if (!d) fail(exit_usage, "invalid --ttl " + o.ttl);
        body["ttl_seconds"] = whole_seconds(*d);
    }
    if (!o.catch_up.empty()) body["catch_up"] = o.catch_up;
    if (o.catch_up_limit > 0) body["catch_up_limit"] = o.catch_up_limit;
    if (!o.overlap.empty()) body["overlap"] = o.overlap;
    if (o.paused) body["paused"] = true;
    api a{o};
    auto r = a.call(verb::post, "/api/schedules", json::serialize(body));
    if (o.json) return print_raw(r);
    auto v = parse_body(r);
    std::cout << "schedule " << o.name << (r.status == 201 ? " created" : " updated");
    if (auto next = string_member(v, "next_run_at"); !next.empty()) std::cout << "; next run at " << next;
    std::cout << '\n';
}

void schedule_list(const common_options& o) {
    api a{o};
    auto r = a.call(verb::get, "/api/schedules");
    if (o.json) return print_raw(r);
    auto v = parse_body(r);
    const auto& rows = rows_of(v, "schedules");
    if (rows.empty()) {
        std::cout << "no schedules\n";
        return;
    }
    table t{{"NAME", "CRON", "TZ", "QUEUE", "PAUSED", "NEXT_RUN", "LAST_JOB", "LAST_STATUS"}};
    for (const auto& s : rows) {
        const json::value* last = member(s, "last_run");
        bool has_last = last && last->is_object();
        t.add_row({cell(s, "name"), cell(s, "cron"), cell(s, "tz"), cell(s, "queue"), cell(s, "paused"),
                   cell(s, "next_run_at"), has_last ? cell(*last, "job_id") : "-",
                   has_last ? cell(*last, "status") : "-"});
    }
    std::cout << t.render();
}

struct schedule_name_options : common_options {
    std::string name;
};

void schedule_action(const schedule_name_options& o, verb method, const std::string& suffix,
                     const char* done) {
    api a{o};
    auto r = a.call(method, schedule_path(o.name) + suffix);
    if (o.json) return print_raw(r);
    auto v = parse_body(r);
    if (auto id = string_member(v, "job_id"); !id.empty()) {
        std::cout << id << '\n';
        return;
    }
    std::cout << "schedule " << o.name << ' ' << done << '\n';
}

void add_schedule_commands(CLI::App& app) {
    auto* group =
        app.add_subcommand("schedule", "Recurring schedules: add, list, rm, pause, resume, trigger");
    group->require_subcommand(1);
    {
        auto o = std::make_shared<schedule_options>();
        auto* sub = group->add_subcommand("add", "Create or replace a schedule");
        sub->add_option("name", o->name, "Schedule name")->required();
        sub->add_option("cron", o->cron,
                        "Cron expression (quote it): \"*/5 * * * *\", @hourly, \"@every 30s\"")
            ->required();
        sub->add_option("payload", o->payload,
                        "Job payload: inline JSON, @file, or - for stdin (default {})");
        sub->add_option("-q,--queue", o->queue, "Queue its jobs go to (server default: default)");
        sub->add_option("--tz", o->tz, "IANA time zone of the cron times (default UTC)");
        sub->add_option("-p,--priority", o->priority, "Integer (higher runs first) or high, normal, low");
        sub->add_option("--max-retries", o->max_retries, "Retries after a failed attempt");
        sub->add_option("--timeout", o->timeout, "Time limit of one attempt: 30s, 5m, ...");
        sub->add_option("--ttl", o->ttl, "How long results are kept: 1h, 7d, ...");
        sub->add_option("--catch-up", o->catch_up, "Missed ticks: none (one job now) or all")
            ->check(CLI::IsMember({"none", "all"}));
        sub->add_option("--catch-up-limit", o->catch_up_limit, "catch-up all: at most this many missed ticks")
            ->check(CLI::Range(1, 10000));
        sub->add_option("--overlap", o->overlap, "While the previous job is live: allow or skip")
            ->check(CLI::IsMember({"allow", "skip"}));
        sub->add_flag("--paused", o->paused, "Create it paused");
        add_common(sub, *o);
        bind(sub, o, schedule_add);
    }
    {
        auto o = std::make_shared<common_options>();
        auto* sub = group->add_subcommand("list", "List schedules with their next and last runs");
        add_common(sub, *o);
        bind(sub, o, schedule_list);
    }
    struct action {
        const char* name;
        const char* help;
        verb method;
        const char* suffix;
        const char* done;
    };
    static const action actions[] = {
        {"rm", "Delete a schedule (its jobs stay)", verb::delete_, "", "deleted"},
        {"pause", "Pause a schedule", verb::post, "/pause", "paused"},
        {"resume", "Resume a paused schedule from its next tick", verb::post, "/resume", "resumed"},
        {"trigger", "Make one job now and print its id", verb::post, "/trigger", "triggered"},
    };
    for (const auto& act : actions) {
        auto o = std::make_shared<schedule_name_options>();
        auto* sub = group->add_subcommand(act.name, act.help);
        sub->add_option("name", o->name, "Schedule name")->required();
        add_common(sub, *o);
        const action* a = &act;
        sub->callback([o, a] { run_command([&] { schedule_action(*o, a->method, a->suffix, a->done); }); });
    }
}

}  // namespace

void add_client_commands(CLI::App& app) {
    {
        auto o = std::make_shared<submit_options>();
        auto* sub = app.add_subcommand("submit", "Submit a job and print its id");
        o->payload_opt = sub->add_option("payload", o->payload,
                                         "Job payload: inline JSON, @file, or - for stdin (default {})");
        sub->add_option("-q,--queue", o->queue, "Queue to submit to")->capture_default_str();
        o->priority_opt =
            sub->add_option("-p,--priority", o->priority, "Integer (higher runs first) or high, normal, low");
        o->delay_opt = sub->add_option("--delay", o->delay,
                                       "Run after this delay: 500ms, 10s, 2m, 1h (bare number: seconds)");
        o->at_opt = sub->add_option("--at", o->at, "Run at this time (ISO 8601, e.g. 2030-01-01T12:00:00Z)");
        o->max_retries_opt =
            sub->add_option("--max-retries", o->max_retries, "Retries after a failed attempt");
        o->timeout_opt = sub->add_option("--timeout", o->timeout, "Time limit of one attempt: 30s, 5m, ...");
        o->ttl_opt = sub->add_option("--ttl", o->ttl, "How long the result is kept: 1h, 7d, ...");
        o->unique_key_opt =
            sub->add_option("--unique-key", o->unique_key, "Deduplicate: reuse the live job with this key");
        sub->add_option("--depends-on", o->depends_on, "Wait for these job ids to complete first (comma-separated)");
        sub->add_option("--on-parent-failure", o->on_parent_failure,
                        "When a parent fails or is cancelled: fail (default), cancel or run")
            ->check(CLI::IsMember({"fail", "cancel", "run"}));
        sub->add_flag("-w,--wait", o->wait,
                      "Follow the job with a progress bar, print its result; exit 1 if it fails");
        add_common(sub, *o);
        sub->get_option("--delay")->excludes(sub->get_option("--at"));
        bind(sub, o, submit);
    }
    add_id_command(app, "status", "Show a job's status record", status);
    add_id_command(app, "result", "Print a job's result (JSON)", result);
    add_id_command(app, "cancel", "Cancel a job (and delete its record and result)", cancel);
    add_id_command(app, "retry", "Requeue a failed or cancelled job", retry);
    add_id_command(app, "watch", "Follow a job's progress until it ends; exit 1 unless it completed", watch);
    {
        auto o = std::make_shared<list_options>();
        auto* sub = app.add_subcommand("list", "List jobs, newest first");
        sub->add_option("-q,--queue", o->queue, "Only this queue");
        sub->add_option("-s,--status", o->status, "Only this status");
        sub->add_option("-n,--limit", o->limit, "At most this many (server default 50)")
            ->check(CLI::Range(1, 1000));
        sub->add_option("--cursor", o->cursor, "Continue from a previous page");
        add_common(sub, *o);
        bind(sub, o, list);
    }
    add_plain_command(app, "queues", "Per-queue depth by state", queues);
    add_plain_command(app, "workers", "Live workers", workers);
    add_plain_command(app, "stats", "Totals and per-status breakdown", stats);
    add_schedule_commands(app);
}

int exit_code_for(const CLI::Error& e) {
    if (e.get_name() == "RuntimeError") return e.get_exit_code();
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return exit_ok;  // --help, --version
    return exit_usage;
}

int handle_cli_error(const CLI::App& app, const CLI::Error& e) {
    app.exit(e);
    return exit_code_for(e);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text.empty()) return std::nullopt;
    std::size_t split = 0;
    while (split < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[split])) || text[split] == '.'))
        ++split;
    std::string_view number = text.substr(0, split), unit = text.substr(split);
    if (number.empty() || number.front() == '.' || number.back() == '.') return std::nullopt;
    double value = 0;
    auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc{} || p != number.data() + number.size()) return std::nullopt;
    double ms_per_unit;
    if (unit == "ms")
        ms_per_unit = 1;
    else if (unit.empty() || unit == "s")
        ms_per_unit = 1000;
    else if (unit == "m")
        ms_per_unit = 60'000;
    else if (unit == "h")
        ms_per_unit = 3'600'000;
    else if (unit == "d")
        ms_per_unit = 86'400'000;
    else
        return std::nullopt;
    double ms = value * ms_per_unit;
    if (!std::isfinite(ms) || ms > 1e15) return std::nullopt;
    return std::chrono::milliseconds{static_cast<std::int64_t>(std::llround(ms))};
}

std::optional<int> parse_priority(std::string_view text) {
    if (text == "high") return 10;
    if (text == "normal") return 0;
    if (text == "low") return -10;
    int v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
    return v;
}

}  // namespace spool::cli
