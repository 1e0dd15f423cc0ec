// src/util/log.cpp
#include "util/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace spool::log {

namespace {

std::mutex mu;
spdlog::level::level_enum current_level = spdlog::level::info;
std::string current_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
std::shared_ptr<spdlog::sinks::sink> shared_sink;

std::shared_ptr<spdlog::sinks::sink> sink() {
    if (!shared_sink) shared_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    return shared_sink;
}

}  // namespace

void setup(std::string_view level, std::string_view format) {
    std::lock_guard lock{mu};
    current_level = spdlog::level::from_str(std::string{level});
    if (format == "json")
        // Messages are plain text without quotes by convention; the logger name and
        // level are fixed words, so this stays valid JSON per line.
        current_pattern = R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","pid":%P,"msg":"%v"})";
    else
        current_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
    spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) {
        l->set_level(current_level);
        l->set_pattern(current_pattern, spdlog::pattern_time_type::utc);
    });
}

std::shared_ptr<spdlog::logger> get(const std::string& name) {
    if (auto l = spdlog::get(name)) return l;
    std::lock_guard lock{mu};
    if (auto l = spdlog::get(name)) return l;
    auto l = std::make_shared<spdlog::logger>(name, sink());
    l->set_level(current_level);
    l->set_pattern(current_pattern, spdlog::pattern_time_type::utc);
    spdlog::register_logger(l);
    return l;
}

}  // namespace spool::log
