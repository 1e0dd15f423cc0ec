// testing/chromium.hpp
// A real headless Chromium for the dashboard's browser tests, driven over the
// DevTools protocol by this small client of our own (Beast WebSocket + Boost.JSON,
// blocking, every step bounded by a deadline). The browser runs in its own
// process group with a throw-away profile, is told to open no network
// connections of its own, and dies with the test (SIGKILL of its group).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace spool::testing {

// The chromium binary: $SPOOL_CHROMIUM, else /usr/bin/chromium. Empty when missing.
std::string chromium_binary();

// A console message at level error, an uncaught exception, or a failed load,
// as the page reported it.
struct page_error {
    std::string source;  // "console", "exception", "log"
    std::string text;
};

class cdp_connection;

// One tab, attached over the browser's DevTools connection.
class browser_page {
public:
    browser_page(std::shared_ptr<cdp_connection> conn, std::string session_id, std::string target_id);
    ~browser_page();
    browser_page(const browser_page&) = delete;
    browser_page& operator=(const browser_page&) = delete;

    // A DevTools command on this tab; its `result`. Throws std::runtime_error on a
    // protocol error or when no answer comes within `timeout`.
    boost::json::object call(const std::string& method, boost::json::object params = {},
                             std::chrono::milliseconds timeout = std::chrono::seconds{15});

    // Navigates and waits until the document has loaded.
    void navigate(const std::string& url);
    // Evaluates `expression` in the page (a promise is awaited) and returns its
    // value (JSON-serialisable results only). Throws when it throws.
    boost::json::value eval(const std::string& expression,
                            std::chrono::milliseconds timeout = std::chrono::seconds{15});
    // Polls the boolean `predicate` every 50 ms until it is true or `timeout` passes.
    bool wait_for(const std::string& predicate, std::chrono::milliseconds timeout = std::chrono::seconds{15});
    // Clicks the centre of the first element matching `selector` with real mouse
    // events (so it must be visible and on top). Throws when there is none.
    void click(const std::string& selector);
    // Types `text` into the focused element as key events.
    void type(const std::string& text);
    // Presses one key (e.g. "Tab", "Enter", "Escape").
    void press(const std::string& key);

    // Viewport size (CSS pixels); `mobile` emulates a phone.
    void set_viewport(int width, int height, bool mobile = false);
    // prefers-color-scheme: "dark", "light" or "" (the default).
    void set_color_scheme(const std::string& scheme);
    // A PNG of the whole page (beyond the viewport) at `path`.
    void screenshot(const std::string& path);

    // Errors reported so far (console.error, uncaught exceptions, failed loads).
    std::vector<page_error> errors() const;
    void clear_errors();

private:
    std::shared_ptr<cdp_connection> conn_;
    std::string session_;
    std::string target_;
};

class chromium {
public:
    // Starts the browser (headless) and connects. Throws std::runtime_error when
    // it is missing or does not come up within 30 s.
    chromium();
    ~chromium();
    chromium(const chromium&) = delete;
    chromium& operator=(const chromium&) = delete;

    // A new tab at about:blank, 1280x900.
    std::unique_ptr<browser_page> new_page();
    int pid() const noexcept { return pid_; }

private:
    int pid_ = -1;
    std::string profile_dir_;
    std::shared_ptr<cdp_connection> conn_;
};

}  // namespace spool::testing
