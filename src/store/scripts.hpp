// src/store/scripts.hpp
// Every Lua script of the job store. Each states its contract (KEYS, ARGV,
// returns) at the top of its source in scripts.cpp; docs/keys.md has the schema.
#pragma once

#include "redis/script.hpp"

#include <string_view>
#include <vector>

namespace spool::store::scripts {

// The scripts that write job records take `compact`: true writes the compact
// layout (docs/keys.md, "Compact records"), false the layout of the versions
// before it (for a rolling upgrade from one: SPOOL_RECORD_FORMAT=classic).
// `submit` writes the fields its caller built (codec::append_new_record), in
// either layout. The job indexes follow the layout too: the `jobs` and `done`
// streams, or the `all` and `completed` sorted sets (docs/keys.md, "Job indexes").

const redis::script& submit(bool compact = true);
const redis::script& claim();
const redis::script& take(bool compact = true);
const redis::script& start(bool compact = true);
const redis::script& complete(bool compact = true);
const redis::script& fail();
const redis::script& release();
const redis::script& extend();
const redis::script& progress();
const redis::script& mark_running();
const redis::script& reclaim();
const redis::script& promote();
const redis::script& cancel();
const redis::script& remove();
const redis::script& retry();
const redis::script& purge();
const redis::script& submit_waiting(bool compact = true);
const redis::script& attach();
const redis::script& resolve();
const redis::script& flow_gate();
const redis::script& open_gate();
const redis::script& tag_queue();
// Recurring schedules (store/schedules.hpp).
const redis::script& schedule_upsert();
const redis::script& schedule_fire(bool compact = true);
const redis::script& schedule_pause();
const redis::script& schedule_delete();

const redis::script& retry_dead();
const redis::script& purge_completed();
const redis::script& age_jobs();

// The names the shared prelude defines. A script carries only the helpers its
// body uses (each one costs Redis time on every call); scripts_test.cpp checks
// that every script defines each of these it mentions.
std::vector<std::string_view> helper_names();

}  // namespace spool::store::scripts
