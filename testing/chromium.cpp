// testing/chromium.cpp
#include "testing/chromium.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace spool::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

std::string chromium_binary() {
    const char* env = std::getenv("SPOOL_CHROMIUM");
    std::string path = env && *env ? env : "/usr/bin/chromium";
    return ::access(path.c_str(), X_OK) == 0 ? path : std::string{};
}

namespace {

std::string base64_decode(std::string_view in) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    out.reserve(in.size() * 3 / 4);
    unsigned buf = 0;
    int bits = 0;
    for (char c : in) {
        int v = val(c);
        if (v < 0) continue;  // padding, line breaks
        buf = (buf << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buf >> bits) & 0xff));
        }
    }
    return out;
}

std::string text_of(const json::value& v) {
    if (v.is_string()) return std::string{v.get_string()};
    return json::serialize(v);
}

}  // namespace

// The browser-level DevTools WebSocket; commands for a tab carry its sessionId.
class cdp_connection {
public:
    cdp_connection(std::uint16_t port, const std::string& path) {
        tcp::endpoint ep{asio::ip::make_address_v4("127.0.0.1"), port};
        beast::get_lowest_layer(ws_).connect(ep);
        ws_.read_message_max(256 * 1024 * 1024);
        ws_.handshake("127.0.0.1:" + std::to_string(port), path);
    }
    ~cdp_connection() {
        boost::system::error_code ec;
        beast::get_lowest_layer(ws_).close(ec);
    }

    json::object call(const std::string& session, const std::string& method, json::object params,
                      std::chrono::milliseconds timeout) {
        const int id = next_id_++;
        json::object msg;
        msg["id"] = id;
        msg["method"] = method;
        msg["params"] = std::move(params);
        if (!session.empty()) msg["sessionId"] = session;
        ws_.text(true);
        ws_.write(asio::buffer(json::serialize(msg)));
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left <= 0ms) throw std::runtime_error("DevTools: no answer to " + method + " in time");
            auto m = read_one(left);
            if (auto* mid = m.if_contains("id"); mid && mid->is_int64() && mid->get_int64() == id) {
                if (auto* err = m.if_contains("error"))
                    throw std::runtime_error("DevTools " + method + ": " + json::serialize(*err));
                auto* r = m.if_contains("result");
                return r && r->is_object() ? r->get_object() : json::object{};
            }
            if (m.contains("method")) on_event(m);
        }
    }

    std::vector<page_error> errors(const std::string& session) const {
        auto it = errors_.find(session);
        return it == errors_.end() ? std::vector<page_error>{} : it->second;
    }
    void clear_errors(const std::string& session) { errors_.erase(session); }

private:
    json::object read_one(std::chrono::milliseconds timeout) {
        buf_.consume(buf_.size());
        bool done = false;
        boost::system::error_code rec;
        ws_.async_read(buf_, [&](boost::system::error_code ec, std::size_t) {
            rec = ec;
            done = true;
        });
        io_.restart();
        io_.run_for(timeout);
        if (!done) {
            boost::system::error_code ec;
            beast::get_lowest_layer(ws_).close(ec);
            io_.restart();
            io_.run();
            throw std::runtime_error("DevTools: the browser did not answer in time");
        }
        if (rec) throw std::runtime_error("DevTools connection: " + rec.message());
        boost::system::error_code ec;
        auto v = json::parse(beast::buffers_to_string(buf_.data()), ec);
        if (ec || !v.is_object()) return {};
        return v.get_object();
    }

    void on_event(const json::object& m) {
        std::string session = m.contains("sessionId") ? text_of(m.at("sessionId")) : std::string{};
        std::string method = text_of(m.at("method"));
        const auto* p = m.if_contains("params");
        if (!p || !p->is_object()) return;
        const auto& params = p->get_object();
        if (method == "Runtime.consoleAPICalled") {
            auto type = text_of(params.at("type"));
            if (type != "error" && type != "assert") return;
            std::string text;
            if (auto* args = params.if_contains("args"); args && args->is_array())
                for (const auto& a : args->get_array()) {
                    const auto& o = a.get_object();
                    if (auto* v = o.if_contains("value"))
                        text += text_of(*v) + " ";
                    else if (auto* d = o.if_contains("description"))
                        text += text_of(*d) + " ";
                }
            errors_[session].push_back({"console", text});
        } else if (method == "Runtime.exceptionThrown") {
            const auto& d = params.at("exceptionDetails").get_object();
            std::string text = d.contains("text") ? text_of(d.at("text")) : std::string{};
            if (auto* e = d.if_contains("exception"); e && e->is_object())
                if (auto* desc = e->get_object().if_contains("description")) text += " " + text_of(*desc);
            errors_[session].push_back({"exception", text});
        } else if (method == "Log.entryAdded") {
            const auto& e = params.at("entry").get_object();
            if (text_of(e.at("level")) != "error") return;
            std::string text = text_of(e.at("text"));
            if (auto* u = e.if_contains("url")) text += " (" + text_of(*u) + ")";
            errors_[session].push_back({"log", text});
        }
    }

    asio::io_context io_;
    websocket::stream<tcp::socket> ws_{io_};
    beast::flat_buffer buf_;
    int next_id_ = 1;
    std::map<std::string, std::vector<page_error>> errors_;
};

browser_page::browser_page(std::shared_ptr<cdp_connection> conn, std::string session_id,
                           std::string target_id)
    : conn_{std::move(conn)}, session_{std::move(session_id)}, target_{std::move(target_id)} {}

browser_page::~browser_page() {
    try {
        json::object p;
        p["targetId"] = target_;
        conn_->call({}, "Target.closeTarget", std::move(p), 5s);
    } catch (const std::exception&) {
        // the browser is going away anyway
    }
}

json::object browser_page::call(const std::string& method, json::object params,
                                std::chrono::milliseconds timeout) {
    return conn_->call(session_, method, std::move(params), timeout);
}

void browser_page::navigate(const std::string& url) {
    json::object p;
    p["url"] = url;
    auto r = call("Page.navigate", std::move(p));
    if (auto* e = r.if_contains("errorText"); e && !e->get_string().empty())
        throw std::runtime_error("navigate " + url + ": " + text_of(*e));
    json::value target = json::string{url};
    auto expr = "location.href === " + json::serialize(target) + " && document.readyState === 'complete'";
    if (!wait_for(expr, 15s)) throw std::runtime_error("navigate " + url + ": the page did not load");
}

json::value browser_page::eval(const std::string& expression, std::chrono::milliseconds timeout) {
    json::object p;
    p["expression"] = expression;
    p["returnByValue"] = true;
    p["awaitPromise"] = true;
    p["userGesture"] = true;
    auto r = call("Runtime.evaluate", std::move(p), timeout);
    if (auto* ex = r.if_contains("exceptionDetails")) {
        std::string text = json::serialize(*ex);
        throw std::runtime_error("evaluate failed: " + text.substr(0, 600) +
                                 " in: " + expression.substr(0, 200));
    }
    const auto& res = r.at("result").get_object();
    if (auto* v = res.if_contains("value")) return *v;
    return nullptr;  // undefined
}

bool browser_page::wait_for(const std::string& predicate, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    const std::string expr =
        "(() => { try { return !!(" + predicate + "); } catch (e) { return false; } })()";
    for (;;) {
        auto v = eval(expr);
        if (v.is_bool() && v.get_bool()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);  // the polling interval of the condition, not a fixed wait
    }
}

void browser_page::click(const std::string& selector) {
    json::value sel = json::string{selector};
    auto rect = eval("(() => { const el = document.querySelector(" + json::serialize(sel) +
                     "); if (!el) return null; el.scrollIntoView({block: 'center'});"
                     " const r = el.getBoundingClientRect(); return {x: r.left + r.width / 2, y: r.top + "
                     "r.height / 2}; })()");
    if (!rect.is_object()) throw std::runtime_error("click: no element matches " + selector);
    double x = rect.at("x").to_number<double>(), y = rect.at("y").to_number<double>();
    for (const char* type : {"mouseMoved", "mousePressed", "mouseReleased"}) {
        json::object p;
        p["type"] = type;
        p["x"] = x;
        p["y"] = y;
        if (std::string_view{type} != "mouseMoved") {
            p["button"] = "left";
            p["clickCount"] = 1;
        }
        call("Input.dispatchMouseEvent", std::move(p));
    }
}

void browser_page::type(const std::string& text) {
    json::object p;
    p["text"] = text;
    call("Input.insertText", std::move(p));
}

void browser_page::press(const std::string& key) {
    int code = key == "Tab" ? 9 : key == "Enter" ? 13 : key == "Escape" ? 27 : key == " " ? 32 : 0;
    for (const char* type : {"keyDown", "keyUp"}) {
        json::object p;
        p["type"] = type;
        p["key"] = key;
        p["code"] = key == " " ? "Space" : key;
        p["windowsVirtualKeyCode"] = code;
        if (std::string_view{type} == "keyDown" && (key == "Enter" || key == " "))
            p["text"] = key == "Enter" ? "\r" : " ";
        call("Input.dispatchKeyEvent", std::move(p));
    }
}

void browser_page::set_viewport(int width, int height, bool mobile) {
    json::object p;
    p["width"] = width;
    p["height"] = height;
    p["deviceScaleFactor"] = 1;
    p["mobile"] = mobile;
    call("Emulation.setDeviceMetricsOverride", std::move(p));
}

void browser_page::set_color_scheme(const std::string& scheme) {
    json::object feature;
    feature["name"] = "prefers-color-scheme";
    feature["value"] = scheme;
    json::array features;
    features.push_back(std::move(feature));
    json::object p;
    p["features"] = std::move(features);
    call("Emulation.setEmulatedMedia", std::move(p));
}

void browser_page::screenshot(const std::string& path) {
    auto m = call("Page.getLayoutMetrics");
    double w = 1280, h = 900;
    if (auto* c = m.if_contains("cssContentSize"); c && c->is_object()) {
        w = c->get_object().at("width").to_number<double>();
        h = c->get_object().at("height").to_number<double>();
    }
    if (auto* v = m.if_contains("cssLayoutViewport"); v && v->is_object()) {
        w = std::max(w, v->get_object().at("clientWidth").to_number<double>());
        h = std::max(h, v->get_object().at("clientHeight").to_number<double>());
    }
    json::object clip;
    clip["x"] = 0;
    clip["y"] = 0;
    clip["width"] = w;
    clip["height"] = std::min(h, 6000.0);
    clip["scale"] = 1;
    json::object p;
    p["format"] = "png";
    p["captureBeyondViewport"] = true;
    p["clip"] = std::move(clip);
    auto r = call("Page.captureScreenshot", std::move(p), 30s);
    std::filesystem::create_directories(std::filesystem::path{path}.parent_path());
    std::ofstream out{path, std::ios::binary};
    out << base64_decode(r.at("data").get_string());
}

std::vector<page_error> browser_page::errors() const { return conn_->errors(session_); }
void browser_page::clear_errors() { conn_->clear_errors(session_); }

chromium::chromium() {
    auto bin = chromium_binary();
    if (bin.empty()) throw std::runtime_error("chromium is not installed (scripts/test installs it)");
    char tmpl[] = "/tmp/spool-chromium-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    profile_dir_ = tmpl;
    std::vector<std::string> args{bin,
                                  "--headless=new",
                                  "--no-sandbox",  // tests may run as root in a container
                                  "--disable-gpu",
                                  "--disable-dev-shm-usage",
                                  "--remote-debugging-address=127.0.0.1",
                                  "--remote-debugging-port=0",
                                  "--user-data-dir=" + profile_dir_,
                                  "--no-first-run",
                                  "--no-default-browser-check",
                                  "--disable-extensions",
                                  "--disable-background-networking",
                                  "--disable-component-update",
                                  "--disable-sync",
                                  "--disable-default-apps",
                                  "--disable-features=Translate,MediaRouter,OptimizationHints",
                                  "--mute-audio",
                                  "--hide-scrollbars",
                                  "--force-color-profile=srgb",
                                  "--lang=en-US",
                                  "--window-size=1280,900",
                                  "about:blank"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string log = profile_dir_ + "/chromium.log";
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::setpgid(0, 0);  // its helpers join this group: one kill stops them all
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    // DevToolsActivePort: the port on its first line, the browser's path on the second.
    std::string port_line, path_line;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
        std::ifstream in{profile_dir_ + "/DevToolsActivePort"};
        if (in && std::getline(in, port_line) && std::getline(in, path_line) && !path_line.empty()) break;
        port_line.clear();
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("chromium exited at start; see " + log);
        }
        std::this_thread::sleep_for(50ms);
    }
    if (port_line.empty()) throw std::runtime_error("chromium did not open its DevTools port; see " + log);
    conn_ = std::make_shared<cdp_connection>(static_cast<std::uint16_t>(std::stoi(port_line)), path_line);
}

chromium::~chromium() {
    conn_.reset();
    if (pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(profile_dir_, ec);
}

std::unique_ptr<browser_page> chromium::new_page() {
    json::object p;
    p["url"] = "about:blank";
    auto t = conn_->call({}, "Target.createTarget", std::move(p), 15s);
    std::string target = text_of(t.at("targetId"));
    json::object a;
    a["targetId"] = target;
    a["flatten"] = true;
    auto s = conn_->call({}, "Target.attachToTarget", std::move(a), 15s);
    auto page = std::make_unique<browser_page>(conn_, text_of(s.at("sessionId")), target);
    page->call("Page.enable");
    page->call("Runtime.enable");
    page->call("Log.enable");
    page->set_viewport(1280, 900);
    return page;
}

}  // namespace spool::testing
