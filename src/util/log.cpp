// src/util/log.cpp
#include "util/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace spool::log {

namespace {

std::mutex mu;
spdlog::level::level_enum current_level = spdlog::level::info;
std::string current_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
std::shared_ptr<spdlog::sinks::sink> shared_sink;

// %j: the message as the inside of a JSON string (quotes, backslashes and control
// characters escaped), so `--log-format json` stays one valid object per line.
class json_message_flag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr char hex[] = "0123456789abcdef";
        for (char c : std::string_view{msg.payload.data(), msg.payload.size()}) {
            switch (c) {
                case '"': dest.append(std::string_view{"\\\""}); break;
                case '\\': dest.append(std::string_view{"\\\\"}); break;
                case '\n': dest.append(std::string_view{"\\n"}); break;
                case '\r': dest.append(std::string_view{"\\r"}); break;
                case '\t': dest.append(std::string_view{"\\t"}); break;
                default:
                    if (static_cast<unsigned char>(c) < 0x20) {
                        char esc[6] = {'\\', 'u', '0', '0', hex[(c >> 4) & 0xf], hex[c & 0xf]};
                        dest.append(esc, esc + 6);
                    } else {
                        dest.push_back(c);
                    }
            }
        }
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<json_message_flag>(); }
};

void apply_format(spdlog::logger& l) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<json_message_flag>('j').set_pattern(current_pattern);
    l.set_formatter(std::move(f));
}

std::shared_ptr<spdlog::sinks::sink> sink() {
    if (!shared_sink) shared_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    return shared_sink;
}

}  // namespace

void setup(std::string_view level, std::string_view format) {
    std::lock_guard lock{mu};
    current_level = spdlog::level::from_str(std::string{level});
    if (format == "json")
        current_pattern = R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","pid":%P,"msg":"%j"})";
    else
        current_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
    spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) {
        l->set_level(current_level);
        apply_format(*l);
    });
}

std::shared_ptr<spdlog::logger> get(const std::string& name) {
    if (auto l = spdlog::get(name)) return l;
    std::lock_guard lock{mu};
    if (auto l = spdlog::get(name)) return l;
    auto l = std::make_shared<spdlog::logger>(name, sink());
    l->set_level(current_level);
    apply_format(*l);
    spdlog::register_logger(l);
    return l;
}

}  // namespace spool::log
