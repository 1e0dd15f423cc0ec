// src/store/scripts_test.cpp
// Each script carries only the prelude helpers it uses: none may be missing
// (Lua would fail at run time on the first call that reaches it), and the
// scripts on the hot path must not carry the ones they do not use.
#include "store/scripts.hpp"

#include <spool/job.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

using namespace spool;
namespace scripts = spool::store::scripts;

namespace {

std::vector<std::pair<std::string, const redis::script*>> every_script() {
    std::vector<std::pair<std::string, const redis::script*>> all;
    for (bool compact : {false, true}) {
        const std::string v = compact ? "" : " (classic)";
        all.emplace_back("take" + v, &scripts::take(compact));
        all.emplace_back("start" + v, &scripts::start(compact));
        all.emplace_back("complete" + v, &scripts::complete(compact));
        all.emplace_back("submit_waiting" + v, &scripts::submit_waiting(compact));
        all.emplace_back("schedule_fire" + v, &scripts::schedule_fire(compact));
        all.emplace_back("submit" + v, &scripts::submit(compact));
    }
    all.emplace_back("claim", &scripts::claim());
    all.emplace_back("fail", &scripts::fail());
    all.emplace_back("release", &scripts::release());
    all.emplace_back("extend", &scripts::extend());
    all.emplace_back("progress", &scripts::progress());
    all.emplace_back("mark_running", &scripts::mark_running());
    all.emplace_back("reclaim", &scripts::reclaim());
    all.emplace_back("promote", &scripts::promote());
    all.emplace_back("cancel", &scripts::cancel());
    all.emplace_back("remove", &scripts::remove());
    all.emplace_back("retry", &scripts::retry());
    all.emplace_back("purge", &scripts::purge());
    all.emplace_back("attach", &scripts::attach());
    all.emplace_back("resolve", &scripts::resolve());
    all.emplace_back("flow_gate", &scripts::flow_gate());
    all.emplace_back("open_gate", &scripts::open_gate());
    all.emplace_back("tag_queue", &scripts::tag_queue());
    all.emplace_back("schedule_upsert", &scripts::schedule_upsert());
    all.emplace_back("schedule_pause", &scripts::schedule_pause());
    all.emplace_back("schedule_delete", &scripts::schedule_delete());
    all.emplace_back("retry_dead", &scripts::retry_dead());
    all.emplace_back("purge_completed", &scripts::purge_completed());
    all.emplace_back("age_jobs", &scripts::age_jobs());
    return all;
}

bool ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// `source` without its comments: `--` to the end of the line, outside quotes.
std::string without_comments(const std::string& source) {
    std::string out;
    char quote = 0;
    for (std::size_t i = 0; i < source.size(); ++i) {
        if (quote == 0 && source.compare(i, 2, "--") == 0) {
            i = source.find('\n', i);
            if (i == std::string::npos) break;
        } else if (quote != 0 && source[i] == '\\') {
            out += source[i++];
        } else if (source[i] == quote || source[i] == '\n') {
            quote = 0;
        } else if (quote == 0 && (source[i] == '\'' || source[i] == '"')) {
            quote = source[i];
        }
        out += source[i];
    }
    return out;
}

// Whether `name` is used in `source`'s code as a whole identifier.
bool uses(const std::string& lua, std::string_view name) {
    const std::string source = without_comments(lua);
    for (auto at = source.find(name); at != std::string::npos; at = source.find(name, at + 1)) {
        const auto end = at + name.size();
        if ((at == 0 || !ident(source[at - 1])) && (end == source.size() || !ident(source[end]))) return true;
    }
    return false;
}

// Whether `source` defines `name` at its top level.
bool defines(const std::string& source, std::string_view name) {
    for (const std::string head : {"local function ", "local "}) {
        const std::string def = "\n" + head + std::string{name};
        for (auto at = source.find(def); at != std::string::npos; at = source.find(def, at + 1)) {
            const auto end = at + def.size();
            if (end < source.size() && !ident(source[end])) return true;
        }
    }
    return false;
}

}  // namespace

TEST(Scripts, ThePreludeNamesItsHelpers) {
    const auto names = scripts::helper_names();
    for (const char* expected : {"compact", "istr", "note", "flush", "hist", "start_one", "to_failed", "released"})
        EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
}

TEST(Scripts, EveryScriptDefinesTheHelpersItUses) {
    for (const auto& [name, script] : every_script()) {
        const std::string source = "\n" + script->source();
        for (auto helper : scripts::helper_names())
            if (uses(source, helper)) {
                EXPECT_TRUE(defines(source, helper)) << name << " uses " << helper;
            }
    }
}

TEST(Scripts, AScriptCarriesOnlyTheHelpersItUses) {
    // release hands jobs back or cancels them: no claiming, no failing.
    const std::string release = "\n" + scripts::release().source();
    EXPECT_TRUE(defines(release, "to_cancelled"));
    EXPECT_TRUE(defines(release, "drop_unique"));  // through to_cancelled
    EXPECT_FALSE(defines(release, "to_failed"));
    EXPECT_FALSE(defines(release, "start_one"));
    EXPECT_FALSE(defines(release, "lease_ids"));
    // complete finishes a batch: no claiming, no starting.
    const std::string complete = "\n" + scripts::complete().source();
    EXPECT_FALSE(defines(complete, "start_one"));
    EXPECT_FALSE(defines(complete, "queue_head"));
    // Every script knows which record layout it writes.
    for (const auto& [name, script] : every_script()) EXPECT_TRUE(defines("\n" + script->source(), "compact")) << name;
    // The classic variant says so after the helpers, before its body.
    EXPECT_NE(scripts::complete(false).source().find("\ncompact = false\n"), std::string::npos);
    EXPECT_EQ(scripts::complete(true).source().find("\ncompact = false\n"), std::string::npos);
}

TEST(Scripts, TheLuaDefaultsAreTheBuiltInOnes) {
    // A compact record leaves out limits at their defaults (codec::append_new_record);
    // the scripts that read them assume the same values as spool/job.hpp.
    const std::string fail = scripts::fail().source();
    EXPECT_NE(fail.find("\nlocal default_max_retries = " + std::to_string(default_max_retries) + "\n"),
              std::string::npos);
    const std::string complete = scripts::complete().source();
    EXPECT_NE(complete.find("\nlocal default_ttl = '" + std::to_string(default_result_ttl.count()) + "'\n"),
              std::string::npos);
}
