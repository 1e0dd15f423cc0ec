// src/util/log.hpp
// spdlog set-up: one named logger per module, all writing to stderr, one line per
// event; `json` format for machines. Loggers are thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace spool::log {

// Configures every logger: level ("trace".."critical", "off") and format ("text" or "json").
void setup(std::string_view level, std::string_view format = "text");
// The logger named `name`, created on first use.
std::shared_ptr<spdlog::logger> get(const std::string& name);

}  // namespace spool::log
