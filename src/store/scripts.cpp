// src/store/scripts.cpp
// The Lua scripts. Each one is a single atomic step of the job state machine
// (docs/keys.md) and declares every key it touches in KEYS. Per-job fields are
// passed in fixed strides so one call can carry a batch of jobs of one queue.
//
// Common ARGV head used by scripts that emit events: now (ms), the updates
// channel, the progress history cap and the queue name.
//
// Events (docs/keys.md, "Job history"): every status change is an entry h<n> of
// the job's own hash (hn counts them), written by the same HSET that changes
// the status; progress events go to a list progress:<id>, created by the first
// one. Each script call publishes the events it made as ONE job_updates message,
// a JSON array.
#include "store/scripts.hpp"

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace spool::store::scripts {

namespace {

// Shared helpers, prepended to every script.
constexpr const char* prelude = R"lua(
-- Compact records (docs/keys.md): long values in pieces, compact start entries.
-- Set per script variant (make); false writes the layout of earlier versions.
local compact = true
-- Integers as text for redis.call arguments and concatenations: a Lua number
-- there is printed as a float ("%.17g", slow); string.format('%d') is not.
local small = {'1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16'}
local function istr(x)
  return small[x] or string.format('%d', x)
end
local function qscore(priority, t)
  return string.format('%.0f', (1000 - tonumber(priority)) * 4398046511104 + (tonumber(t) - 1704067200000))
end
-- The events this script call made; published together by flush() as one
-- job_updates message (a JSON array of event objects).
local updates = {}
local function note(kind, id, qjson, status, now, extra)
  updates[#updates + 1] = '{"type":"' .. kind .. '","job_id":"' .. id .. '","queue":' .. qjson ..
    ',"status":"' .. status .. '","ts":' .. now .. extra .. '}'
end
local function flush(channel)
  if #updates > 0 then redis.call('PUBLISH', channel, '[' .. table.concat(updates, ',') .. ']') end
end
-- Job index entries (docs/keys.md, "Job indexes"): the ids in `ids` (a table, not
-- empty) go in one entry of the queue's `jobs` or `done` stream (fields: the ids,
-- values ''), or, in the classic layout, in the `all` or `completed` sorted set with
-- `score`. A stream entry is stamped `at` (ms) when that is later than the stream's
-- last entry and at most a minute past Redis's clock, else with Redis's next id (a
-- host whose clock runs ahead would otherwise hold every later entry at its time).
local function index(key, ids, score, at)
  local a = {}
  if compact then
    for i = 1, #ids do a[2 * i - 1] = ids[i]; a[2 * i] = '' end
    if at and tonumber(at) <= tonumber(redis.call('TIME')[1]) * 1000 + 60000 and
        type(redis.pcall('XADD', key, at .. '-*', unpack(a))) == 'string' then
      return
    end
    redis.call('XADD', key, '*', unpack(a))
  else
    for i = 1, #ids do a[2 * i - 1] = score; a[2 * i] = ids[i] end
    redis.call('ZADD', key, unpack(a))
  end
end
-- Appends history entry number n (the status change `status` at `now`, `extra`
-- a JSON fragment starting with ',' or '') to the flat HSET argument list `f`.
local function hist(f, n, status, now, extra)
  f[#f + 1] = 'hn'; f[#f + 1] = n
  f[#f + 1] = 'h' .. n; f[#f + 1] = '{"status":"' .. status .. '","ts":' .. now .. extra .. '}'
end
-- A pending start (`st` = `S<ts> <worker>`, `V…` when validating; docs/keys.md):
-- `take` leases and marks a job running without reading its record, so the
-- attempt it began is not yet counted in `attempts` nor its entry in the history.
-- True when `st` (a field's value) holds one.
local function pending(st)
  return st ~= nil and st ~= false and st ~= ''
end
-- The history entry of the pending start `st` for attempt number `attempt`:
-- `S<ts> <attempt> <worker>` (codec.hpp).
local function start_entry(st, attempt)
  local head, worker = string.match(st, '^([SV]%d+) (.*)$')
  return head .. ' ' .. istr(attempt) .. ' ' .. worker
end
-- A status change of a job whose history length is not known: one HSET with
-- `fields` (flat) and the history entry, published as `kind`. A pending start is
-- written out first (its attempt counted, its entry before this one); `fields`
-- come after it in the HSET, so a caller's `attempts` wins.
local function set_status(job_key, fields, kind, id, qjson, status, now, extra)
  local r = redis.call('HMGET', job_key, 'hn', 'st', 'attempts')
  local f = {}
  -- A record a previous version wrote: its earlier events are in its stream.
  if not r[1] then f[#f + 1] = 'legacy'; f[#f + 1] = 1 end
  local n = (tonumber(r[1]) or 0) + 1
  if pending(r[2]) then
    local a = (tonumber(r[3]) or 0) + 1
    f[#f + 1] = 'attempts'; f[#f + 1] = istr(a)
    f[#f + 1] = 'h' .. istr(n); f[#f + 1] = start_entry(r[2], a)
    f[#f + 1] = 'st'; f[#f + 1] = ''
    n = n + 1
  end
  for _, v in ipairs(fields) do f[#f + 1] = v end
  f[#f + 1] = 'status'; f[#f + 1] = status
  hist(f, n, status, now, extra)
  redis.call('HSET', job_key, unpack(f))
  note(kind, id, qjson, status, now, extra)
end
-- A compact record leaves out limits at their built-in defaults (spool/job.hpp,
-- codec::append_new_record); max_retries is the one scripts read.
local default_max_retries = 3
-- The default result TTL (seconds, as the caller passes it): a ttl not stored.
local default_ttl = '3600'
-- Milliseconds from a to b; never negative (the times come from different hosts' clocks).
local function span(a, b)
  if b > a then return b - a end
  return 0
end
-- Long values (payload, an inline result) of 65..1024 bytes go in 64-byte pieces:
-- field `name` holds the first, `name+2`..`name+k` the rest, so the record keeps
-- values short enough for Redis's listpack encoding (codec.cpp joins them). Shorter
-- and longer values are one field. No count is stored: a 64-byte first piece may
-- have more, and readers look for them (records of earlier versions carry the count
-- as `pk`/`rk`).
local function put_long(f, name, v)
  local len = #v
  if not compact or len <= 64 or len > 1024 then
    f[#f + 1] = name; f[#f + 1] = v
    return
  end
  f[#f + 1] = name; f[#f + 1] = string.sub(v, 1, 64)
  local k = 1
  for i = 65, len, 64 do
    k = k + 1
    f[#f + 1] = name .. '+' .. istr(k); f[#f + 1] = string.sub(v, i, i + 63)
  end
end
-- The pieces 2..k of a long value whose first piece is `first` (a table of
-- strings; nil when the value is one piece). `k` is an earlier version's count, or
-- nil: then a 64-byte first piece may be followed by up to 15 more.
local piece_names = {}
local function pieces(job_key, name, first, k)
  k = tonumber(k)
  if not k then
    if #first ~= 64 then return nil end
    local names = piece_names[name]
    if not names then
      names = {}
      for i = 2, 16 do names[#names + 1] = name .. '+' .. istr(i) end
      piece_names[name] = names
    end
    local got = redis.call('HMGET', job_key, unpack(names))
    local out = {}
    for _, v in ipairs(got) do
      if not v then break end
      out[#out + 1] = v
    end
    if #out == 0 then return nil end
    return out
  end
  if k < 2 then return nil end
  local names = {}
  for i = 2, k do names[#names + 1] = name .. '+' .. istr(i) end
  return redis.call('HMGET', job_key, unpack(names))
end
local function drop_unique(unique_key, job_key, id)
  local uk = redis.call('HGET', job_key, 'unique_key')
  if uk and uk ~= '' and redis.call('HGET', unique_key, uk) == id then
    redis.call('HDEL', unique_key, uk)
  end
end
-- `active` and `leases` also hold `unpacked`, a 65-byte name that is no job id
-- (score +inf, value ''; docs/keys.md, "Leases"): an entry over 64 bytes keeps
-- Redis from packing them as listpacks, in which every lease taken, checked or
-- dropped scans the whole set (skiplist and hash table instead).
local unpacked = string.rep('~', 65)
-- Claiming (claim and take). Leases `ids`: fresh fencing tokens from meta.fence,
-- deadline `now + lease_ms` in `active`. Returns the tokens, in order.
local function lease_ids(ids, active_key, leases_key, meta_key, now, lease_ms)
  local last = redis.call('HINCRBY', meta_key, 'fence', #ids)
  local deadline = string.format('%d', tonumber(now) + tonumber(lease_ms))
  local zargs, hargs, tokens = {'+inf', unpacked}, {unpacked, ''}, {}
  for j, id in ipairs(ids) do
    tokens[j] = last - #ids + j
    zargs[#zargs + 1] = deadline; zargs[#zargs + 1] = id
    hargs[#hargs + 1] = id; hargs[#hargs + 1] = string.format('%d', tokens[j])
  end
  redis.call('ZADD', active_key, unpack(zargs))
  redis.call('HSET', leases_key, unpack(hargs))
  return tokens
end
-- The earliest scheduled job's due time, or 0 when none waits.
local function next_due_of(scheduled_key)
  local first = redis.call('ZRANGE', scheduled_key, 0, 0, 'WITHSCORES')
  return first[2] or 0
end
-- Up to `n` ids at the head of `queued` (the candidates for the next `take`);
-- when work is left, the marker is re-armed so the next idle worker wakes too.
local function queue_head(queued_key, marker_key, n)
  local nexts = redis.call('ZRANGE', queued_key, 0, tonumber(n) - 1)
  if #nexts > 0 then redis.call('ZADD', marker_key, 0, 'w') end
  return nexts
end
-- Starts one leased job (start and take): status, attempt count, history entry,
-- started event. `tail` is the part of the event JSON shared by a batch.
-- Returns the fields the worker needs, or nil when the record is gone.
-- `b` holds the parts shared by a batch (starts(): the entry and event heads).
local function start_one(job_key, id, now, status, worker, b)
  local f = redis.call('HMGET', job_key, 'payload', 'attempts', 'max_retries', 'timeout', 'ttl', 'created_at',
    'unique_key', 'hn', 'parents', 'pk')
  if not f[1] then return nil end
  local payload = f[1]
  local rest = pieces(job_key, 'payload', f[1], f[10])
  if rest then
    table.insert(rest, 1, f[1])
    payload = rest
  end
  local attempts = (tonumber(f[2]) or 0) + 1
  local n = (tonumber(f[8]) or 0) + 1
  local as, ns = istr(attempts), istr(n)
  local extra = ',"attempt":' .. as .. b.tail
  local hname = 'h' .. ns
  -- A compact start entry says when and where the attempt started: started_at and
  -- worker_id are read from it (codec::decode_job), not stored beside it.
  if not compact then
    redis.call('HSET', job_key, 'status', status, 'started_at', now, 'worker_id', worker, 'attempts', as,
      'hn', ns, hname, b.entry .. as .. b.who)
  elseif f[8] then
    redis.call('HSET', job_key, 'status', status, 'attempts', as, 'hn', ns, hname, b.entry .. as .. b.who)
  else
    redis.call('HSET', job_key, 'status', status, 'attempts', as, 'hn', ns, hname, b.entry .. as .. b.who,
      'legacy', '1')
  end
  updates[#updates + 1] = '{"type":"job_started","job_id":"' .. id .. b.event .. extra
  -- Limits at their defaults are absent ('': the worker takes the defaults).
  return {payload, attempts, f[3] or '', f[4] or '', f[5] or '', f[6], f[7] or '', n, f[9] or ''}
end
-- Leases of jobs whose record was found deleted at their start: dropped.
local function drop_gone(active_key, leases_key, gone)
  if #gone == 0 then return end
  redis.call('ZREM', active_key, unpack(gone))
  redis.call('HDEL', leases_key, unpack(gone))
end
-- The parts of start entries and job_started events shared by one batch. The
-- history entry is the compact `S<ts> <attempt> <worker>` (`V` when validating;
-- codec.hpp), so the record keeps short values.
local function starts(queue, status, now, worker)
  local code = 'S'
  if status == 'validating' then code = 'V' end
  local w = cjson.encode(worker)
  local entry, who = code .. now .. ' ', ' ' .. worker
  if not compact then entry, who = '{"status":"' .. status .. '","ts":' .. now .. ',"attempt":', ',"worker_id":' .. w .. '}' end
  return {tail = ',"worker_id":' .. w .. '}',
    entry = entry, who = who,
    event = '","queue":' .. cjson.encode(queue) .. ',"status":"' .. status .. '","ts":' .. now}
end
-- Dependencies (docs/keys.md): a parent's children still to be told wait in
-- children:<id> (the queue's meta counts them as `kids`); a terminal parent moves
-- them to the queue's `resolved` list ("<child> <parent> <outcome>"), from which the
-- broker delivers each to its child (the `resolve` script, idempotent). Every key
-- is the queue's own: base is the meta key without "meta".
local released = 0
local function release(meta_key, id, outcome)
  local base = string.sub(meta_key, 1, -5)
  local ck = base .. 'children:' .. id
  local kids = redis.call('SMEMBERS', ck)
  if #kids == 0 then return end
  for _, c in ipairs(kids) do redis.call('RPUSH', base .. 'resolved', c .. ' ' .. id .. ' ' .. outcome) end
  redis.call('DEL', ck)
  redis.call('HINCRBY', meta_key, 'kids', -#kids)
  released = released + #kids
end
local function has_kids(meta_key)
  return (tonumber(redis.call('HGET', meta_key, 'kids')) or 0) > 0
end
-- Terminal transitions shared by fail, release, reclaim and cancel.
local function to_cancelled(job_key, cancelled_key, unique_key, meta_key, id, qjson, now)
  set_status(job_key, {'completed_at', now, 'error_message', 'cancelled'}, 'job_cancelled', id, qjson, 'cancelled',
    now, '')
  redis.call('ZADD', cancelled_key, now, id)
  drop_unique(unique_key, job_key, id)
  redis.call('HINCRBY', meta_key, 'cancelled', 1)
  if has_kids(meta_key) then release(meta_key, id, 'cancelled') end
end
local function to_failed(job_key, failed_key, unique_key, meta_key, id, qjson, now, err, extra)
  set_status(job_key, {'completed_at', now, 'error_message', err}, 'job_failed', id, qjson, 'failed', now,
    ',"error":' .. cjson.encode(err) .. extra)
  redis.call('ZADD', failed_key, now, id)
  drop_unique(unique_key, job_key, id)
  redis.call('HINCRBY', meta_key, 'failed', 1)
  if has_kids(meta_key) then release(meta_key, id, 'failed') end
end
)lua";

bool is_ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// `text` without its Lua comments (`--` to the end of the line, outside strings).
std::string code_of(std::string_view text) {
    std::string out;
    char quote = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quote == 0 && c == '-' && i + 1 < text.size() && text[i + 1] == '-') {
            i = text.find('\n', i);
            if (i == std::string_view::npos) break;
            out += '\n';
            continue;
        }
        if (quote != 0 && c == '\\' && i + 1 < text.size()) {
            out += c;
            out += text[++i];
            continue;
        }
        if (c == '\'' || c == '"') quote = quote == 0 ? c : (quote == c ? 0 : quote);
        if (c == '\n') quote = 0;
        out += c;
    }
    return out;
}

// Whether `name` occurs in `text` as a whole Lua identifier.
bool mentions(std::string_view text, std::string_view name) {
    for (auto at = text.find(name); at != std::string_view::npos; at = text.find(name, at + 1)) {
        const bool starts = at == 0 || !is_ident(text[at - 1]);
        const bool ends = at + name.size() == text.size() || !is_ident(text[at + name.size()]);
        if (starts && ends) return true;
    }
    return false;
}

// One top-level definition of the prelude (with the comment above it), its code
// without comments, and the names it defines.
struct helper {
    std::string_view text;
    std::string code;
    std::vector<std::string_view> names;
};

// The prelude split into its helpers, once.
const std::vector<helper>& helpers() {
    static const std::vector<helper> out = [] {
        std::vector<helper> hs;
        std::string_view rest{prelude}, last;
        while (!rest.empty()) {
            const auto eol = rest.find('\n');
            const auto line = rest.substr(0, eol == std::string_view::npos ? rest.size() : eol + 1);
            rest.remove_prefix(line.size());
            const bool comment = line.starts_with("--"), local = line.starts_with("local ");
            // A definition starts a helper unless its comment did; so does a comment after code.
            const bool after_code = !last.empty() && !last.starts_with("--");
            if (hs.empty() || ((comment || local) && after_code)) hs.push_back(helper{line.substr(0, 0), {}, {}});
            auto& h = hs.back();
            h.text = std::string_view{h.text.data(), h.text.size() + line.size()};
            if (local) {
                auto name = line.substr(6);
                if (name.starts_with("function ")) name.remove_prefix(9);
                std::size_t n = 0;
                while (n < name.size() && is_ident(name[n])) ++n;
                h.names.push_back(name.substr(0, n));
            }
            last = line;
        }
        for (auto& h : hs) h.code = code_of(h.text);
        return hs;
    }();
    return out;
}

// The script: the prelude's helpers that `body` uses (directly or through other
// helpers; `compact` always), then the body. Every helper a script carries is
// made anew on each call (~1 µs for the whole prelude), so each carries only its own.
redis::script make(const char* body, bool compact = true) {
    const auto& hs = helpers();
    std::vector<bool> used(hs.size(), false);
    std::string needed = code_of(body);
    // A helper uses only the ones above it: walk up, adding what the rest needs.
    for (std::size_t i = hs.size(); i-- > 0;) {
        for (auto name : hs[i].names) used[i] = used[i] || name == "compact" || mentions(needed, name);
        if (used[i]) needed.append(hs[i].code);
    }
    std::string text;
    for (std::size_t i = 0; i < hs.size(); ++i)
        if (used[i]) text.append(hs[i].text);
    return redis::script{text + (compact ? "" : "compact = false\n") + body};
}

}  // namespace

std::vector<std::string_view> helper_names() {
    std::vector<std::string_view> out;
    for (const auto& h : helpers()) out.insert(out.end(), h.names.begin(), h.names.end());
    return out;
}

const redis::script& submit(bool compact) {
    static const char* const body = R"lua(
-- submit: new jobs -> queued, or scheduled when run_at is in the future; dedupe on unique_key.
-- The caller builds each record's fields (codec::append_new_record: status, limits,
-- payload, the first history entry), so the script passes them to HSET as they come.
-- One job_updates message for the batch.
-- KEYS[1] queued  KEYS[2] scheduled  KEYS[3] jobs (all, classic)  KEYS[4] marker  KEYS[5] meta  KEYS[6] unique
--   per job i (0-based): KEYS[7+i] job:<id>
-- ARGV[1] now  ARGV[2] channel  ARGV[4] queue
-- ARGV[3] the batch's job_updates message, built by the caller (a JSON array of one
--   job_created event per job, exactly as note() makes them) when no job of the batch
--   has a unique_key (so every job is created); '' to build the events here
--   per job, from ARGV[5] on: id, unique_key, status (queued|scheduled), score (the
--   queued score, or the due time), n, then n record arguments (field, value, ...)
-- returns per job, flattened: id, status, duplicate (0|1)
local now, channel, queue = ARGV[1], ARGV[2], ARGV[4]
local prebuilt = ARGV[3]
local out = {}
local n = #KEYS - 6
local queued, scheduled, made = {}, {}, {}
local qjson = cjson.encode(queue)
local a = 5
for i = 0, n - 1 do
  local id, uk, status = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local first = a + 5
  local last = a + 4 + tonumber(ARGV[a + 4])
  local score = ARGV[a + 3]
  a = last + 1
  local existing = false
  if uk ~= '' then existing = redis.call('HGET', KEYS[6], uk) end
  if existing then
    out[#out + 1] = existing; out[#out + 1] = ''; out[#out + 1] = 1
  else
    if uk ~= '' then redis.call('HSET', KEYS[6], uk, id) end
    redis.call('HSET', KEYS[7 + i], unpack(ARGV, first, last))
    if status == 'scheduled' then
      scheduled[#scheduled + 1] = score; scheduled[#scheduled + 1] = id
    else
      queued[#queued + 1] = score; queued[#queued + 1] = id
    end
    made[#made + 1] = id
    if prebuilt == '' then note('job_created', id, qjson, status, now, '') end
    out[#out + 1] = id; out[#out + 1] = status; out[#out + 1] = 0
  end
end
if #made > 0 then
  if #queued > 0 then redis.call('ZADD', KEYS[1], unpack(queued)) end
  if #scheduled > 0 then redis.call('ZADD', KEYS[2], unpack(scheduled)) end
  index(KEYS[3], made, 0)
  redis.call('HINCRBY', KEYS[5], 'submitted', #made)
  redis.call('ZADD', KEYS[4], 0, 'w')
  if prebuilt ~= '' then redis.call('PUBLISH', channel, prebuilt) end
end
flush(channel)
return out
)lua";
    static const redis::script s[2] = {make(body, false), make(body, true)};
    return s[compact ? 1 : 0];
}

const redis::script& claim() {
    static const redis::script s = make(R"lua(
-- claim: takes up to N ready jobs (due scheduled ones first, then queued by priority
-- and age) and leases them: each gets a fencing token and a lease deadline in
-- `active`. Touches queue-level keys only; `start` then updates the job records.
-- KEYS[1] queued  KEYS[2] scheduled  KEYS[3] active  KEYS[4] leases  KEYS[5] meta  KEYS[6] marker
-- ARGV[1] now  ARGV[2] lease ms  ARGV[3] max jobs
-- returns {-1} when paused, else {next_due_ms_or_0, {next ids}, id1, token1, id2, token2, ...}
-- where {next ids} is the head of `queued` left behind (up to max jobs): the
-- candidates for the worker's next `take`.
if redis.call('HGET', KEYS[5], 'paused') == '1' then return {-1} end
local now, max = tonumber(ARGV[1]), tonumber(ARGV[3])
local ids = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(due) do ids[#ids + 1] = id end
if #due > 0 then redis.call('ZREM', KEYS[2], unpack(due)) end
if #ids < max then
  local popped = redis.call('ZPOPMIN', KEYS[1], max - #ids)
  for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
end
local out = {next_due_of(KEYS[2]), {}}
if #ids == 0 then return out end
local tokens = lease_ids(ids, KEYS[3], KEYS[4], KEYS[5], now, ARGV[2])
for i, id in ipairs(ids) do
  out[#out + 1] = id; out[#out + 1] = tokens[i]
end
out[2] = queue_head(KEYS[1], KEYS[6], max)
return out
)lua");
    return s;
}

const redis::script& take(bool compact) {
    static const char* const body = R"lua(
-- take: claim + start in one step for candidates the worker already knows (the
-- head of `queued` as the last claim/take or the wake-up saw it). Candidates
-- still at the head of `queued` (its first #candidates + ARGV[8] ids: one read that
-- also gives the next candidates) are leased (fresh fencing tokens, deadline in
-- `active`) and started; ones another worker took meanwhile, or that newer jobs of
-- a higher priority pushed back, are skipped. Due scheduled jobs
-- are left to `claim` (their keys are not declared here): next_due tells.
-- Deferred start (compact records, candidates given): the record is not read. Each
-- taken job gets `status` and a pending start `st` = `S<now> <worker>` in one HSET;
-- the worker reads the records itself (HGETALL, pipelined behind this call) and
-- publishes the job_started events, and the first status change after this one
-- (complete, fail, release, reclaim, mark_running: set_status) writes the attempt
-- count and the start entry. Readers merge a pending start (codec::decode_job).
-- Head mode (ARGV[9] is ''): the candidates are the first ARGV[10] ids of `queued`
-- as the script finds them, and their record keys are made here from KEYS[1] (the
-- queue's own keys, so the same slot). A worker queues this call behind its
-- BZPOPMIN on the marker, so a wake-up brings its first jobs, started, in the same
-- round trip; the call may run seconds after the caller's `now`, so the time is
-- Redis's clock when that is later. The time used is the reply's last element.
-- KEYS[1] queued  KEYS[2] scheduled  KEYS[3] active  KEYS[4] leases  KEYS[5] meta  KEYS[6] marker
--   per candidate i: KEYS[7+i] job (none in head mode)
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] worker id  ARGV[6] status
-- ARGV[7] lease ms  ARGV[8] how many next candidates to return; then the candidate ids,
--   or '' and how many to take (head mode)
-- returns {-1} when paused, else {next_due_ms_or_0, {next ids}, id1, token1, fields1, ...} with
-- fields as `start` returns them; in head mode followed by the time used (ms). A
-- deferred start returns {next_due_ms_or_0, {next ids}, id1, token1, id2, token2, ...}.
if redis.call('HGET', KEYS[5], 'paused') == '1' then return {-1} end
local now, channel, queue, worker, status = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local head = ARGV[9] == ''
local want = tonumber(ARGV[8])
local cand, job_keys = {}, {}
if head then
  local t = redis.call('TIME')
  local redis_now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if redis_now > tonumber(now) then now = string.format('%d', redis_now) end
else
  for i = 1, #ARGV - 8 do cand[i] = ARGV[8 + i]; job_keys[i] = KEYS[6 + i] end
end
-- The head of `queued` (as many ids as this call may take and then report as
-- the next candidates): a candidate in it is still queued; one behind it (newer
-- jobs of a higher priority came first) waits for a later take.
local take_n = #cand
if head then take_n = tonumber(ARGV[10]) end
local window = redis.call('ZRANGE', KEYS[1], 0, take_n + want - 1)
if head then
  local base = string.sub(KEYS[1], 1, -7)
  for i = 1, math.min(take_n, #window) do
    cand[i] = window[i]; job_keys[i] = base .. 'job:' .. window[i]
  end
end
local n = #cand
local out = {next_due_of(KEYS[2]), {}}
if n == 0 then
  if head then out[#out + 1] = now end
  return out
end
local queued = {}
for _, id in ipairs(window) do queued[id] = true end
local taken, idx = {}, {}
for i = 1, n do
  if queued[cand[i]] then taken[#taken + 1] = cand[i]; idx[#idx + 1] = i end
end
if #taken > 0 then
  redis.call('ZREM', KEYS[1], unpack(taken))
  local tokens = lease_ids(taken, KEYS[3], KEYS[4], KEYS[5], now, ARGV[7])
  if compact and not head then
    local st = (status == 'validating' and 'V' or 'S') .. now .. ' ' .. worker
    for j, id in ipairs(taken) do
      redis.call('HSET', job_keys[idx[j]], 'status', status, 'st', st)
      out[#out + 1] = id; out[#out + 1] = tokens[j]
    end
  else
    local b = starts(queue, status, now, worker)
    local gone = {}
    for j, id in ipairs(taken) do
      local f = start_one(job_keys[idx[j]], id, now, status, worker, b)
      if f then
        out[#out + 1] = id; out[#out + 1] = tokens[j]; out[#out + 1] = f
      else
        gone[#gone + 1] = id
      end
    end
    drop_gone(KEYS[3], KEYS[4], gone)
  end
end
-- The next candidates: the head left behind, from the window.
local left = {}
for _, id in ipairs(taken) do queued[id] = false end
for _, id in ipairs(window) do
  if queued[id] and #left < want then left[#left + 1] = id end
end
if #left > 0 then redis.call('ZADD', KEYS[6], 0, 'w') end
out[2] = left
flush(channel)
if head then out[#out + 1] = now end
return out
)lua";
    static const redis::script s[2] = {make(body, false), make(body, true)};
    return s[compact ? 1 : 0];
}

const redis::script& start(bool compact) {
    static const char* const body = R"lua(
-- start: claimed jobs -> in_progress (or validating); counts the attempt. The
-- compact start entry carries started_at and worker_id (the classic layout also
-- stores them as fields). The
-- claim that leased these jobs ran just before, so the lease is not re-checked
-- here (a stale outcome is still fenced at complete/fail).
-- KEYS[1] active  KEYS[2] leases; per job i: KEYS[3+i] job
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] worker id  ARGV[6] status
--   per job from ARGV[7+2i]: id, token
-- returns per job: {payload, attempts, max_retries, timeout_s, ttl_s, created_at, unique_key,
-- history length}, or 0 when the job was deleted meanwhile
local now, channel, queue, worker, status = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local out = {}
local gone = {}
local n = #KEYS - 2
local b = starts(queue, status, now, worker)
for i = 0, n - 1 do
  local id = ARGV[7 + 2 * i]
  local f = start_one(KEYS[3 + i], id, now, status, worker, b)
  if not f then
    gone[#gone + 1] = id
    out[#out + 1] = 0
  else
    out[#out + 1] = f
  end
end
drop_gone(KEYS[1], KEYS[2], gone)
flush(channel)
return out
)lua";
    static const redis::script s[2] = {make(body, false), make(body, true)};
    return s[compact ? 1 : 0];
}

const redis::script& complete(bool compact) {
    static const char* const body = R"lua(
-- complete: in_progress -> completed (fenced). A stored result up to the inline
-- limit goes in the record (field `result`; it expires ttl after the completion);
-- a larger one in its own key with its TTL. The compact completion entry
-- (`C<ts> …`) is the record's completion time: no completed_at is stored beside it
-- (the classic layout stores one). The ttl argument is the job's (the worker
-- passes the one it read); stored in the record unless it is the default, which a
-- record without ttl means. The history entry goes in the same
-- HSET. The caller builds the entry and the job_completed event (it knows the
-- times) and passes the history length it holds: while a worker holds a job's
-- lease no one else changes the job's status.
-- KEYS[1] active  KEYS[2] leases  KEYS[3] done (completed, classic)  KEYS[4] meta  KEYS[5] unique  KEYS[6] cancels
--   per job i: KEYS[7+i] job; then the result keys of the jobs whose stored result is over the
--   inline limit, in job order (only those: a result key is a KEYS entry to parse and copy)
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] inline limit (bytes)
-- ARGV[6] the batch's job_updates message, built by the caller: a JSON array of one
--   job_completed event per job (`{"type":"job_completed","job_id":"<id>",…}`, no
--   nested object), joined by ','; published as it is when every job completes, else
--   the completed jobs' events are found in it by their ids
--   per job from ARGV[7+9i]: id, token, stored result, ttl seconds ('' for the default,
--   3600), result size in uncompressed bytes ('' when the result is stored as it is: its
--   length), unique_key, history length after this entry, history entry JSON,
--   the start entry of a pending start ('' when the record has its start);
--   the start entry goes in just before the completion entry. A compact record gets no
--   `attempts` here (readers take the attempt from the start entry) and no `result_size`
--   when the inline result is stored as it is (readers take its length)
-- returns per job 1, or 0 when the token no longer matches (a newer attempt owns the job);
--   then, when completed jobs had children waiting, the number of `resolved` entries made
local now, channel = ARGV[1], ARGV[2]
local inline = tonumber(ARGV[5])
local parents = has_kids(KEYS[4])
local out = {}
local ids = {}
local n = (#ARGV - 6) / 9
local apart = 6 + n  -- the last result key used
local check_cancels = redis.call('SCARD', KEYS[6]) > 0
local want = {}
for i = 0, n - 1 do want[i + 1] = ARGV[7 + 9 * i] end
local held = redis.call('HMGET', KEYS[2], unpack(want))
for i = 0, n - 1 do
  local a = 7 + 9 * i
  local id = ARGV[a]
  -- This job's result key, when it has one (fenced out or not).
  if #ARGV[a + 2] > inline then apart = apart + 1 end
  if held[i + 1] ~= ARGV[a + 1] then
    out[#out + 1] = 0
  else
    local stored, hn, ttl, size, start = ARGV[a + 2], ARGV[a + 6], ARGV[a + 3], ARGV[a + 4], ARGV[a + 8]
    -- A compact record leaves out what readers derive: the size of an inline result
    -- stored as it is (its length), and the attempt number (its start entry's).
    local sized = compact and #stored <= inline and size == ''
    if size == '' then size = istr(#stored) end
    if sized and #stored <= 64 and ttl == '' then
      if start ~= '' then
        redis.call('HSET', KEYS[7 + i], 'status', 'completed', 'result', stored, 'st', '',
          'h' .. istr(tonumber(hn) - 1), start, 'hn', hn, 'h' .. hn, ARGV[a + 7])
      else
        redis.call('HSET', KEYS[7 + i], 'status', 'completed', 'result', stored, 'hn', hn, 'h' .. hn,
          ARGV[a + 7])
      end
    else
      local f = {'status', 'completed', 'hn', hn, 'h' .. hn, ARGV[a + 7]}
      if not sized then f[#f + 1] = 'result_size'; f[#f + 1] = size end
      if start ~= '' then
        f[#f + 1] = 'st'; f[#f + 1] = ''
        f[#f + 1] = 'h' .. istr(tonumber(hn) - 1); f[#f + 1] = start
      end
      if not compact then f[#f + 1] = 'completed_at'; f[#f + 1] = now end
      if ttl ~= '' then f[#f + 1] = 'ttl'; f[#f + 1] = ttl end
      if #stored <= inline then
        put_long(f, 'result', stored)
      else
        redis.call('SET', KEYS[apart], stored, 'EX', ttl ~= '' and ttl or default_ttl)
      end
      redis.call('HSET', KEYS[7 + i], unpack(f))
    end
    local uk = ARGV[a + 5]
    if uk ~= '' and redis.call('HGET', KEYS[5], uk) == id then redis.call('HDEL', KEYS[5], uk) end
    if parents then release(KEYS[4], id, 'completed') end
    ids[#ids + 1] = id
    out[#out + 1] = 1
  end
end
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
  redis.call('HDEL', KEYS[2], unpack(ids))
  if check_cancels then redis.call('SREM', KEYS[6], unpack(ids)) end
  index(KEYS[3], ids, now, now)
  redis.call('HINCRBY', KEYS[4], 'completed', #ids)
  -- Completed jobs in `done` (the queue's count of them; `completed` counts every completion).
  if compact then redis.call('HINCRBY', KEYS[4], 'done', #ids) end
  if #ids == n then
    redis.call('PUBLISH', channel, ARGV[6])
  else
    -- Some were fenced out: the completed jobs' events only.
    local parts = {}
    for _, id in ipairs(ids) do
      local from = string.find(ARGV[6], '{"type":"job_completed","job_id":"' .. id .. '"', 1, true)
      if from then parts[#parts + 1] = string.sub(ARGV[6], from, string.find(ARGV[6], '}', from, true)) end
    end
    redis.call('PUBLISH', channel, '[' .. table.concat(parts, ',') .. ']')
  end
end
if released > 0 then out[#out + 1] = released end
return out
)lua";
    static const redis::script s[2] = {make(body, false), make(body, true)};
    return s[compact ? 1 : 0];
}

const redis::script& fail() {
    static const redis::script s = make(R"lua(
-- fail: in_progress -> scheduled (retry after backoff) or failed (retries exhausted or
-- not retryable), or cancelled when a cancel was requested. Fenced.
-- KEYS[1] active  KEYS[2] leases  KEYS[3] scheduled  KEYS[4] failed  KEYS[5] meta  KEYS[6] unique
-- KEYS[7] marker  KEYS[8] cancels  KEYS[9] cancelled; per job i: KEYS[10+i] job
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue
--   per job from ARGV[5+5i]: id, token, error message, retryable (1|0), backoff ms
-- returns per job: 1 retrying, 2 failed, 3 cancelled, 0 lease lost; then, when failed or
--   cancelled jobs had children waiting, the number of `resolved` entries made
local now, channel, queue = ARGV[1], ARGV[2], ARGV[4]
local qjson = cjson.encode(queue)
local out = {}
local n = #KEYS - 9
for i = 0, n - 1 do
  local a = 5 + 5 * i
  local id, token, err = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if redis.call('HGET', KEYS[2], id) ~= token then
    out[#out + 1] = 0
  else
    local job_key = KEYS[10 + i]
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    local f = redis.call('HMGET', job_key, 'attempts', 'max_retries', 'created_at', 'started_at', 'hn', 'st')
    local attempts, max_retries = tonumber(f[1]) or 1, tonumber(f[2]) or default_max_retries
    local started = tonumber(f[4])
    -- A running job's last entry is its start (or, once a validating job was
    -- accepted, the one before): a compact one (`S<ts> …`, `V…`) says when. A
    -- pending start (set_status writes it out below) is this attempt's.
    local hn = tonumber(f[5])
    if pending(f[6]) then
      attempts = (tonumber(f[1]) or 0) + 1
      started = tonumber(string.match(f[6], '^[SV](%d+) '))
    elseif hn and hn > 1 then
      local e = redis.call('HMGET', job_key, 'h' .. hn, 'h' .. (hn - 1))
      started = tonumber(string.match(e[1] or '', '^[SV](%d+) ') or string.match(e[2] or '', '^[SV](%d+) ')) or started
    end
    started = started or tonumber(now)
    local timing = ',"duration_ms":' .. span(started, tonumber(now)) .. ',"wait_ms":' .. span(tonumber(f[3]) or started, started)
    if redis.call('SREM', KEYS[8], id) == 1 then
      to_cancelled(job_key, KEYS[9], KEYS[6], KEYS[5], id, qjson, now)
      out[#out + 1] = 3
    elseif ARGV[a + 3] == '1' and attempts <= max_retries then
      local due = tonumber(now) + tonumber(ARGV[a + 4])
      set_status(job_key, {'scheduled_at', due, 'error_message', err}, 'job_retrying', id, qjson, 'scheduled', now,
        ',"error":' .. cjson.encode(err) .. ',"attempt":' .. attempts .. ',"scheduled_at":' .. due)
      redis.call('ZADD', KEYS[3], due, id)
      redis.call('ZADD', KEYS[7], 0, 'w')
      redis.call('HINCRBY', KEYS[5], 'retried', 1)
      out[#out + 1] = 1
    else
      to_failed(job_key, KEYS[4], KEYS[6], KEYS[5], id, qjson, now, err, timing)
      out[#out + 1] = 2
    end
  end
end
flush(channel)
if released > 0 then out[#out + 1] = released end
return out
)lua");
    return s;
}

const redis::script& release() {
    static const redis::script s = make(R"lua(
-- release: hands running jobs back to the queue without counting the attempt
-- (graceful shutdown), in the place they had. Fenced. A job with a cancel request
-- becomes cancelled instead.
-- KEYS[1] active  KEYS[2] leases  KEYS[3] queued  KEYS[4] marker  KEYS[5] cancels  KEYS[6] cancelled
-- KEYS[7] unique  KEYS[8] meta; per job i: KEYS[9+i] job
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue; per job from ARGV[5+2i]: id, token
-- returns the number of jobs handed back
local now, channel, queue = ARGV[1], ARGV[2], ARGV[4]
local qjson = cjson.encode(queue)
local n = #KEYS - 8
local back = 0
for i = 0, n - 1 do
  local id, token = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  if redis.call('HGET', KEYS[2], id) == token then
    local job_key = KEYS[9 + i]
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    if redis.call('SREM', KEYS[5], id) == 1 then
      to_cancelled(job_key, KEYS[6], KEYS[7], KEYS[8], id, qjson, now)
    else
      local f = redis.call('HMGET', job_key, 'priority', 'created_at', 'attempts', 'st')
      -- The attempt handed back is not counted (a pending start's was not yet).
      local attempts = tonumber(f[3]) or 0
      if attempts > 0 and not pending(f[4]) then attempts = attempts - 1 end
      redis.call('HDEL', job_key, 'worker_id', 'started_at', 'token')
      set_status(job_key, {'attempts', attempts, 'progress', 0}, 'job_retrying', id, qjson, 'queued', now,
        ',"reason":"worker shutdown"')
      redis.call('ZADD', KEYS[3], qscore(f[1] or 0, f[2] or now), id)
      back = back + 1
    end
  end
end
if back > 0 then redis.call('ZADD', KEYS[4], 0, 'w') end
flush(channel)
return back
)lua");
    return s;
}

const redis::script& extend() {
    static const redis::script s = make(R"lua(
-- extend: renews the leases of running jobs (many per call). Fenced.
-- KEYS[1] active  KEYS[2] leases  KEYS[3] cancels
-- ARGV[1] new deadline ms; then pairs id, token
-- returns {{lost ids...}, {ids with a cancel request...}}
local lost, cancelled = {}, {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[2], id) ~= token then
    lost[#lost + 1] = id
  else
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], id)
    if redis.call('SISMEMBER', KEYS[3], id) == 1 then cancelled[#cancelled + 1] = id end
  end
end
return {lost, cancelled}
)lua");
    return s;
}

const redis::script& progress() {
    static const redis::script s = make(R"lua(
-- progress: records percent + message of a running job and appends a progress
-- event to its list progress:<id> (created by the first one; capped, oldest out).
-- Each entry is "<history length>|<event JSON>": it follows that history entry. Fenced.
-- KEYS[1] leases  KEYS[2] job  KEYS[3] progress list
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] id  ARGV[6] token
-- ARGV[7] percent  ARGV[8] message
-- returns 1, or 0 when the lease is gone
local id = ARGV[5]
if redis.call('HGET', KEYS[1], id) ~= ARGV[6] then return 0 end
local f = redis.call('HMGET', KEYS[2], 'status', 'hn', 'st')
local status = f[1] or 'in_progress'
-- A pending start is the history entry after the stored ones (it stays pending).
local hn = tonumber(f[2]) or 0
if pending(f[3]) then hn = hn + 1 end
local extra = ',"progress":' .. tonumber(ARGV[7]) .. ',"message":' .. cjson.encode(ARGV[8])
redis.call('HSET', KEYS[2], 'progress', ARGV[7], 'progress_message', ARGV[8])
redis.call('HINCRBY', KEYS[2], 'pn', 1)
local len = redis.call('RPUSH', KEYS[3], istr(hn) .. '|{"status":"' .. status .. '","ts":' .. ARGV[1] .. extra .. '}')
if len > tonumber(ARGV[3]) then redis.call('LTRIM', KEYS[3], len - tonumber(ARGV[3]), -1) end
note('job_progress', id, cjson.encode(ARGV[4]), status, ARGV[1], extra)
flush(ARGV[2])
return 1
)lua");
    return s;
}

const redis::script& mark_running() {
    static const redis::script s = make(R"lua(
-- mark_running: validating -> in_progress once the handler accepted its input. Fenced.
-- A pending start is written out first (set_status): the caller's complete then
-- passes no start entry.
-- KEYS[1] leases  KEYS[2] job
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] id  ARGV[6] token
-- returns 1, or 0 when the lease is gone
local id = ARGV[5]
if redis.call('HGET', KEYS[1], id) ~= ARGV[6] then return 0 end
set_status(KEYS[2], {}, 'job_started', id, cjson.encode(ARGV[4]), 'in_progress', ARGV[1], '')
flush(ARGV[2])
return 1
)lua");
    return s;
}

const redis::script& reclaim() {
    static const redis::script s = make(R"lua(
-- reclaim: jobs whose lease ran out (their worker died or stalled) go back to the
-- queue in the place they had (the attempt stays counted) or to failed when no
-- retries are left.
-- KEYS[1] active  KEYS[2] leases  KEYS[3] queued  KEYS[4] failed  KEYS[5] meta  KEYS[6] unique
-- KEYS[7] marker  KEYS[8] cancels  KEYS[9] cancelled; per job i: KEYS[10+i] job
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue; then the candidate ids
-- returns the number of jobs reclaimed (candidates whose lease was renewed meanwhile are skipped)
local now, channel, queue = ARGV[1], ARGV[2], ARGV[4]
local qjson = cjson.encode(queue)
local count = 0
for i = 0, #ARGV - 5 do
  local id = ARGV[5 + i]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= tonumber(now) then
    local job_key = KEYS[10 + i]
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    count = count + 1
    if redis.call('EXISTS', job_key) == 1 then
      local f = redis.call('HMGET', job_key, 'attempts', 'max_retries', 'priority', 'created_at', 'scheduled_at', 'st')
      local attempts, max_retries = tonumber(f[1]) or 0, tonumber(f[2]) or default_max_retries
      -- A pending start's attempt counts (set_status writes it out).
      if pending(f[6]) then attempts = attempts + 1 end
      local err = 'lease expired: the worker running attempt ' .. attempts .. ' stopped responding'
      if redis.call('SREM', KEYS[8], id) == 1 then
        to_cancelled(job_key, KEYS[9], KEYS[6], KEYS[5], id, qjson, now)
      elseif attempts <= max_retries then
        redis.call('HDEL', job_key, 'worker_id', 'token')
        set_status(job_key, {'error_message', err, 'progress', 0}, 'job_retrying', id, qjson, 'queued', now,
          ',"error":' .. cjson.encode(err))
        -- Back in its original place, not behind the backlog: the score it was
        -- queued with (created_at, or when it became due for delayed and retried jobs).
        local placed = math.max(tonumber(f[4]) or tonumber(now), tonumber(f[5]) or 0)
        redis.call('ZADD', KEYS[3], qscore(f[3] or 0, placed), id)
        redis.call('ZADD', KEYS[7], 0, 'w')
        redis.call('HINCRBY', KEYS[5], 'retried', 1)
      else
        to_failed(job_key, KEYS[4], KEYS[6], KEYS[5], id, qjson, now, err, '')
      end
    end
  end
end
flush(channel)
return count
)lua");
    return s;
}

const redis::script& promote() {
    static const redis::script s = make(R"lua(
-- promote: due scheduled jobs (delay elapsed, retry backoff over) -> queued.
-- KEYS[1] scheduled  KEYS[2] queued  KEYS[3] marker; per job i: KEYS[4+i] job
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue; then the candidate ids
-- returns the number of jobs promoted
local now, channel, queue = ARGV[1], ARGV[2], ARGV[4]
local qjson = cjson.encode(queue)
local count = 0
for i = 0, #ARGV - 5 do
  local id = ARGV[5 + i]
  local due = redis.call('ZSCORE', KEYS[1], id)
  if due and tonumber(due) <= tonumber(now) then
    local job_key = KEYS[4 + i]
    redis.call('ZREM', KEYS[1], id)
    if redis.call('EXISTS', job_key) == 1 then
      local prio = redis.call('HGET', job_key, 'priority') or 0
      redis.call('ZADD', KEYS[2], qscore(prio, due), id)
      set_status(job_key, {}, 'job_queued', id, qjson, 'queued', now, '')
      count = count + 1
    end
  end
end
if count > 0 then redis.call('ZADD', KEYS[3], 0, 'w') end
flush(channel)
return count
)lua");
    return s;
}

const redis::script& cancel() {
    static const redis::script s = make(R"lua(
-- cancel: queued/scheduled -> cancelled at once; a running job gets a cancel request
-- (its worker is signalled on the cancel channel and sees it on its next lease renewal).
-- KEYS[1] queued  KEYS[2] scheduled  KEYS[3] active  KEYS[4] cancelled  KEYS[5] meta  KEYS[6] unique
-- KEYS[7] cancels  KEYS[8] job  KEYS[9] waiting
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] id  ARGV[6] cancel channel
-- returns 'ok:cancelled' (queued, scheduled or waiting: done), 'ok:cancelling' (running; the worker stops it), 'missing', or
-- 'state:<status>' when the job is already terminal (nothing changed)
local now, channel, queue, id = ARGV[1], ARGV[2], ARGV[4], ARGV[5]
local status = redis.call('HGET', KEYS[8], 'status')
if not status then return 'missing' end
if redis.call('ZSCORE', KEYS[3], id) then
  redis.call('SADD', KEYS[7], id)
  redis.call('HSET', KEYS[8], 'cancel_requested', 1)
  redis.call('PUBLISH', ARGV[6], id)
  return 'ok:cancelling'
end
local removed = redis.call('ZREM', KEYS[1], id) + redis.call('ZREM', KEYS[2], id) + redis.call('ZREM', KEYS[9], id)
if removed == 0 then return 'state:' .. status end
to_cancelled(KEYS[8], KEYS[4], KEYS[6], KEYS[5], id, cjson.encode(queue), now)
flush(channel)
return 'ok:cancelled'
)lua");
    return s;
}

const redis::script& remove() {
    static const redis::script s = make(R"lua(
-- remove: deletes a job in any state (record, result, progress list, index entries;
-- a previous version's event stream too). A running job loses its lease (its
-- worker's outcome is discarded) and its worker is signalled.
-- KEYS[1] queued  KEYS[2] scheduled  KEYS[3] active  KEYS[4] leases  KEYS[5] completed  KEYS[6] failed
-- KEYS[7] cancelled  KEYS[8] all  KEYS[9] unique  KEYS[10] cancels  KEYS[11] job  KEYS[12] progress
-- KEYS[13] result  KEYS[14] events (previous version's stream)  KEYS[15] waiting  KEYS[16] meta
-- ARGV[1] now  ARGV[2] channel  ARGV[3] queue  ARGV[4] id  ARGV[5] cancel channel
-- returns 1 when deleted, 0 when there was no such job. Children still waiting for
-- it are told it was cancelled.
local id = ARGV[4]
local status = redis.call('HGET', KEYS[11], 'status')
if not status then return 0 end
if has_kids(KEYS[16]) then release(KEYS[16], id, 'cancelled') end
local live = redis.call('ZREM', KEYS[1], id) + redis.call('ZREM', KEYS[2], id) + redis.call('ZREM', KEYS[15], id)
if redis.call('ZREM', KEYS[3], id) == 1 then
  live = live + 1
  redis.call('HDEL', KEYS[4], id)
  redis.call('PUBLISH', ARGV[5], id)
end
drop_unique(KEYS[9], KEYS[11], id)
-- A completed job is counted in `done` unless the classic `completed` set holds it.
-- Its entries in the `jobs` and `done` streams stay until those age out; readers
-- skip ids whose record is gone.
if redis.call('ZREM', KEYS[5], id) == 0 and status == 'completed' then redis.call('HINCRBY', KEYS[16], 'done', -1) end
redis.call('ZREM', KEYS[6], id); redis.call('ZREM', KEYS[7], id)
redis.call('ZREM', KEYS[8], id); redis.call('SREM', KEYS[10], id)
redis.call('DEL', KEYS[11], KEYS[12], KEYS[13], KEYS[14])
if live > 0 then note('job_cancelled', id, cjson.encode(ARGV[3]), 'cancelled', ARGV[1], ',"deleted":true') end
flush(ARGV[2])
return 1
)lua");
    return s;
}

const redis::script& retry() {
    static const redis::script s = make(R"lua(
-- retry: failed or cancelled -> queued, with a fresh attempt budget. Its history
-- and progress list are kept (the new attempt's events follow them).
-- KEYS[1] failed  KEYS[2] cancelled  KEYS[3] queued  KEYS[4] marker  KEYS[5] unique  KEYS[6] job
-- KEYS[7] result
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] id
-- returns 'queued', 'missing', or the status that cannot be retried
local now, id = ARGV[1], ARGV[5]
local status = redis.call('HGET', KEYS[6], 'status')
if not status then return 'missing' end
if status ~= 'failed' and status ~= 'cancelled' then return status end
redis.call('ZREM', KEYS[1], id); redis.call('ZREM', KEYS[2], id)
redis.call('DEL', KEYS[7])
redis.call('HDEL', KEYS[6], 'worker_id', 'token', 'result_size', 'result_expires_at', 'progress_message', 'result', 'rk')
set_status(KEYS[6], {'attempts', 0, 'progress', 0, 'error_message', '', 'completed_at', 0, 'started_at', 0,
  'scheduled_at', 0, 'cancel_requested', 0}, 'job_retrying', id, cjson.encode(ARGV[4]), 'queued', now,
  ',"manual":true')
local f = redis.call('HMGET', KEYS[6], 'priority', 'unique_key')
if f[2] and f[2] ~= '' then redis.call('HSETNX', KEYS[5], f[2], id) end
redis.call('ZADD', KEYS[3], qscore(f[1] or 0, now), id)
redis.call('ZADD', KEYS[4], 0, 'w')
flush(ARGV[2])
return 'queued'
)lua");
    return s;
}

const redis::script& purge() {
    static const redis::script s = make(R"lua(
-- purge: deletes terminal jobs whose retention ended (janitor).
-- KEYS[1] completed  KEYS[2] failed  KEYS[3] cancelled  KEYS[4] all
--   per job i: KEYS[5+4i] job  KEYS[6+4i] progress  KEYS[7+4i] result  KEYS[8+4i] events (previous version)
-- ARGV[1] cutoff ms (terminal before this are deleted); then the candidate ids
-- returns the number of jobs deleted
local cutoff = tonumber(ARGV[1])
local count = 0
for i = 0, #ARGV - 2 do
  local id = ARGV[2 + i]
  local t = redis.call('ZSCORE', KEYS[1], id) or redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[3], id)
  if t and tonumber(t) < cutoff then
    redis.call('ZREM', KEYS[1], id); redis.call('ZREM', KEYS[2], id); redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('DEL', KEYS[5 + 4 * i], KEYS[6 + 4 * i], KEYS[7 + 4 * i], KEYS[8 + 4 * i])
    count = count + 1
  end
end
return count
)lua");
    return s;
}

const redis::script& submit_waiting(bool compact) {
    static const char* const body = R"lua(
-- submit_waiting: a new job that depends on other jobs -> waiting (until every
-- parent is resolved: the `resolve` script). Dedupe on unique_key as in submit.
-- KEYS[1] waiting  KEYS[2] jobs (all, classic)  KEYS[3] meta  KEYS[4] unique  KEYS[5] job
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap (unused)  ARGV[4] queue
-- ARGV[5] id  ARGV[6] priority  ARGV[7] max_retries  ARGV[8] timeout_s  ARGV[9] ttl_s
-- ARGV[10] unique_key  ARGV[11] tenant  ARGV[12] payload  ARGV[13] parents (JSON array)
-- ARGV[14] number of parents  ARGV[15] on_parent_failure (fail|cancel|run)
-- returns {id, duplicate (0|1)}
local now, id, uk = ARGV[1], ARGV[5], ARGV[10]
if uk ~= '' then
  local existing = redis.call('HGET', KEYS[4], uk)
  if existing then return {existing, 1} end
  redis.call('HSET', KEYS[4], uk, id)
end
local fields = {'status', 'waiting', 'priority', ARGV[6], 'max_retries', ARGV[7], 'timeout', ARGV[8], 'ttl', ARGV[9],
  'created_at', now, 'parents', ARGV[13], 'dleft', ARGV[14], 'opf', ARGV[15]}
put_long(fields, 'payload', ARGV[12])
if ARGV[11] ~= '' then fields[#fields + 1] = 'tenant'; fields[#fields + 1] = ARGV[11] end
if uk ~= '' then fields[#fields + 1] = 'unique_key'; fields[#fields + 1] = uk end
hist(fields, 1, 'waiting', now, '')
redis.call('HSET', KEYS[5], unpack(fields))
redis.call('ZADD', KEYS[1], now, id)
index(KEYS[2], {id}, 0)
redis.call('HINCRBY', KEYS[3], 'submitted', 1)
note('job_created', id, cjson.encode(ARGV[4]), 'waiting', now, '')
flush(ARGV[2])
return {id, 0}
)lua";
    static const redis::script s[2] = {make(body, false), make(body, true)};
    return s[compact ? 1 : 0];
}

const redis::script& attach() {
    static const redis::script s = make(R"lua(
-- attach: registers a child with its parent (the parent's queue). A parent that is
-- already terminal (or gone) is resolved for the child at once: the entry goes to
-- this queue's `resolved` list like any other.
-- KEYS[1] parent job  KEYS[2] meta (of the parent's queue)
-- ARGV[1] parent id  ARGV[2] child id
-- returns 'attached', or the outcome queued for delivery (completed, failed, cancelled)
local base = string.sub(KEYS[2], 1, -5)
local function resolved_now(outcome)
  redis.call('RPUSH', base .. 'resolved', ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. outcome)
  return outcome
end
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return resolved_now('cancelled') end
local kids = redis.call('HGET', KEYS[1], 'children')
local list = kids and cjson.decode(kids) or {}
list[#list + 1] = ARGV[2]
redis.call('HSET', KEYS[1], 'children', cjson.encode(list))
if st == 'completed' or st == 'failed' or st == 'cancelled' then return resolved_now(st) end
redis.call('SADD', base .. 'children:' .. ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'kids', 1)
return 'attached'
)lua");
    return s;
}

const redis::script& resolve() {
    static const redis::script s = make(R"lua(
-- resolve: tells a waiting child how one parent ended. Idempotent (each parent is
-- counted once: field p:<parent>). The last completed parent queues the child; a
-- failed or cancelled one fails or cancels it (on_parent_failure; `run` counts it as
-- done), which resolves the child's own children in turn.
-- KEYS[1] job  KEYS[2] waiting  KEYS[3] queued  KEYS[4] marker  KEYS[5] meta  KEYS[6] failed
-- KEYS[7] cancelled  KEYS[8] unique
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] child id  ARGV[6] parent id
-- ARGV[7] outcome (completed | failed | cancelled)
-- returns {what happened: skip | waiting | queued | failed | cancelled, resolved entries made}
local now, id, parent, outcome = ARGV[1], ARGV[5], ARGV[6], ARGV[7]
local f = redis.call('HMGET', KEYS[1], 'status', 'opf', 'priority')
if f[1] ~= 'waiting' then return {'skip', 0} end
if redis.call('HSETNX', KEYS[1], 'p:' .. parent, outcome) == 0 then return {'skip', 0} end
local qjson = cjson.encode(ARGV[4])
local what = 'waiting'
if outcome ~= 'completed' and f[2] ~= 'run' then
  redis.call('ZREM', KEYS[2], id)
  if f[2] == 'cancel' then
    to_cancelled(KEYS[1], KEYS[7], KEYS[8], KEYS[5], id, qjson, now)
    what = 'cancelled'
  else
    to_failed(KEYS[1], KEYS[6], KEYS[8], KEYS[5], id, qjson, now, 'parent ' .. parent .. ' ' .. outcome,
      ',"parent":"' .. parent .. '"')
    what = 'failed'
  end
elseif redis.call('HINCRBY', KEYS[1], 'dleft', -1) <= 0 then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[3], qscore(f[3] or 0, now), id)
  set_status(KEYS[1], {}, 'job_queued', id, qjson, 'queued', now, '')
  redis.call('ZADD', KEYS[4], 0, 'w')
  what = 'queued'
end
flush(ARGV[2])
return {what, released}
)lua");
    return s;
}

const redis::script& flow_gate() {
    static const redis::script s = make(R"lua(
-- flow_gate: the hidden parent every job of a flow (POST /api/flows) waits for, made
-- before them; open_gate releases it once every job exists. In no index.
-- KEYS[1] gate job  ARGV[1] now
redis.call('HSET', KEYS[1], 'status', 'waiting', 'gate', 1, 'created_at', ARGV[1])
return 1
)lua");
    return s;
}

const redis::script& open_gate() {
    static const redis::script s = make(R"lua(
-- open_gate: a flow's gate counts as completed for every job attached to it (their
-- entries go to `resolved` like any parent's), and is deleted.
-- KEYS[1] gate job  KEYS[2] meta (of the gate's queue)  ARGV[1] gate id
-- returns the number of `resolved` entries made, or -1 when there is no such gate
if redis.call('HGET', KEYS[1], 'gate') ~= '1' then return -1 end
release(KEYS[2], ARGV[1], 'completed')
redis.call('DEL', KEYS[1])
return released
)lua");
    return s;
}

const redis::script& tag_queue() {
    static const redis::script s = make(R"lua(
-- tag_queue: the queue's tag for job ids, allocated on first use and never reused
-- (job ids carry it: make_job_id). A global key; no queue script touches it.
-- KEYS[1] <prefix>:queue_tags (q:<name> -> tag, n:<tag> -> name, next)
-- ARGV[1] queue
-- returns the tag (1..65535), or 0 when all are taken (ids then go through the ids index)
local n = redis.call('HGET', KEYS[1], 'q:' .. ARGV[1])
if n then return tonumber(n) end
-- Skip numbers a submitter re-registered after the hash was lost (see submit_many).
repeat
  n = redis.call('HINCRBY', KEYS[1], 'next', 1)
  if n > 65535 then return 0 end
until redis.call('HEXISTS', KEYS[1], 'n:' .. n) == 0
redis.call('HSET', KEYS[1], 'q:' .. ARGV[1], n, 'n:' .. n, ARGV[1])
return n
)lua");
    return s;
}

const redis::script& schedule_upsert() {
    static const redis::script s = make(R"lua(
-- schedule_upsert: creates or replaces a schedule's definition. The next fire
-- time is kept when the timing (cron + zone) is unchanged and one is stored,
-- so restarts and config re-upserts neither skip nor repeat a tick; otherwise
-- it becomes ARGV[4]. Every upsert bumps the version (schedulers holding an
-- older definition get `changed` from schedule_fire and re-read it).
-- KEYS[1] {q:<queue>}:schedules  KEYS[2] {q:<queue>}:schedule_next  KEYS[3] {q:<queue>}:schedule_state
-- ARGV[1] name  ARGV[2] definition JSON  ARGV[3] timing  ARGV[4] next fire ms (0: none)
-- ARGV[5] paused: '1', '0', or '' (keep; a new schedule runs)
-- returns {created (0|1), next fire ms as stored ('' for none), version}
local name = ARGV[1]
local p = name .. '|'
local created = redis.call('HSET', KEYS[1], name, ARGV[2])
local cur = redis.call('ZSCORE', KEYS[2], name)
if redis.call('HGET', KEYS[3], p .. 'timing') ~= ARGV[3] or not cur then
  if tonumber(ARGV[4]) > 0 then
    redis.call('ZADD', KEYS[2], ARGV[4], name)
    cur = ARGV[4]
  else
    redis.call('ZREM', KEYS[2], name)
    cur = ''
  end
end
redis.call('HSET', KEYS[3], p .. 'timing', ARGV[3])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], p .. 'paused', ARGV[5]) end
local ver = redis.call('HINCRBY', KEYS[3], p .. 'ver', 1)
return {created, cur, ver}
)lua");
    return s;
}

const redis::script& retry_dead() {
    static const redis::script s = make(R"lua(
-- retry_dead: failed -> queued for many jobs of one queue (the dashboard's "retry all
-- dead"); each job moves exactly as `retry` moves it, or not at all.
-- KEYS[1] failed  KEYS[2] queued  KEYS[3] marker  KEYS[4] unique
--   per job i: KEYS[5+2i] job  KEYS[6+2i] result
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap  ARGV[4] queue  ARGV[5] tenant ('' = any)
--   then the candidate ids
-- returns the number of jobs requeued (candidates no longer failed, or of another
-- tenant, are skipped)
local now, tenant = ARGV[1], ARGV[5]
local qjson = cjson.encode(ARGV[4])
local count = 0
for i = 0, #ARGV - 6 do
  local id = ARGV[6 + i]
  local job_key, result_key = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local f = redis.call('HMGET', job_key, 'status', 'tenant', 'priority', 'unique_key')
  if f[1] == 'failed' and redis.call('ZSCORE', KEYS[1], id) and (tenant == '' or f[2] == tenant) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', result_key)
    redis.call('HDEL', job_key, 'worker_id', 'token', 'result_size', 'result_expires_at', 'progress_message', 'result', 'rk')
    set_status(job_key, {'attempts', 0, 'progress', 0, 'error_message', '', 'completed_at', 0, 'started_at', 0,
      'scheduled_at', 0, 'cancel_requested', 0}, 'job_retrying', id, qjson, 'queued', now, ',"manual":true')
    if f[4] and f[4] ~= '' then redis.call('HSETNX', KEYS[4], f[4], id) end
    redis.call('ZADD', KEYS[2], qscore(f[3] or 0, now), id)
    count = count + 1
  end
end
if count > 0 then redis.call('ZADD', KEYS[3], 0, 'w') end
flush(ARGV[2])
return count
)lua");
    return s;
}

const redis::script& schedule_fire(bool compact) {
    static const char* const body = R"lua(
-- schedule_fire: one tick (or a manual trigger) of a schedule, decided here
-- alone, so any number of schedulers make exactly one job per tick. A tick is
-- accepted only when the schedule is not paused, its definition version is the
-- caller's and its stored next fire time is the caller's expected one (a
-- compare-and-set); it then moves the next fire time to ARGV[9]. With overlap
-- `skip` a tick whose previous job is still live makes no job (the next fire
-- time moves all the same). The job is created exactly as `submit` creates a
-- job queued at once (same record fields, implied first history entry, queued
-- score, marker, submitted counter, job_created event), plus `schedule` and
-- `schedule_tick` (the tick it was made for).
-- KEYS[1] schedules  KEYS[2] schedule_next  KEYS[3] schedule_state  KEYS[4] queued  KEYS[5] jobs (all, classic)
-- KEYS[6] marker  KEYS[7] meta  KEYS[8] job:<new id>  KEYS[9] job:<previous job id> (job:- for none)
-- ARGV[1] now  ARGV[2] channel  ARGV[3] progress cap (unused)  ARGV[4] queue  ARGV[5] name
-- ARGV[6] 'tick' or 'trigger'  ARGV[7] definition version  ARGV[8] expected next fire ms
-- ARGV[9] new next fire ms (0: none)  ARGV[10] the tick's time  ARGV[11] expected previous job id ('')
-- ARGV[12] overlap ('allow' | 'skip')  ARGV[13] new job id  ARGV[14] priority  ARGV[15] max_retries
-- ARGV[16] timeout_s  ARGV[17] ttl_s  ARGV[18] tenant  ARGV[19] payload  ARGV[20] queued score
-- returns {'fired', id} | {'skipped', live job id} | {'stale', stored next or ''} | {'changed'} |
--   {'paused'} | {'missing'}
local now, channel, queue, name = ARGV[1], ARGV[2], ARGV[4], ARGV[5]
if redis.call('HEXISTS', KEYS[1], name) == 0 then return {'missing'} end
local p = name .. '|'
local st = redis.call('HMGET', KEYS[3], p .. 'ver', p .. 'paused', p .. 'last_job')
if (st[1] or '0') ~= ARGV[7] then return {'changed'} end
local is_tick = ARGV[6] == 'tick'
if is_tick then
  if st[2] == '1' then return {'paused'} end
  local cur = redis.call('ZSCORE', KEYS[2], name)
  if not cur or tonumber(cur) ~= tonumber(ARGV[8]) then return {'stale', cur or ''} end
  if ARGV[12] == 'skip' and (st[3] or '') ~= ARGV[11] then return {'changed'} end
  if tonumber(ARGV[9]) > 0 then
    redis.call('ZADD', KEYS[2], ARGV[9], name)
  else
    redis.call('ZREM', KEYS[2], name)
  end
  if ARGV[12] == 'skip' and ARGV[11] ~= '' then
    local s = redis.call('HGET', KEYS[9], 'status')
    if s == 'queued' or s == 'scheduled' or s == 'validating' or s == 'in_progress' then
      redis.call('HSET', KEYS[3], p .. 'last_outcome', 'skipped', p .. 'last_skip_at', now, p .. 'last_tick', ARGV[10])
      redis.call('HINCRBY', KEYS[3], p .. 'skipped', 1)
      return {'skipped', ARGV[11]}
    end
  end
end
local id = ARGV[13]
local fields = {'status', 'queued', 'priority', ARGV[14], 'max_retries', ARGV[15], 'timeout', ARGV[16],
  'ttl', ARGV[17], 'created_at', now, 'hn', 1, 'schedule', name, 'schedule_tick', ARGV[10]}
put_long(fields, 'payload', ARGV[19])
if ARGV[18] ~= '' then fields[#fields + 1] = 'tenant'; fields[#fields + 1] = ARGV[18] end
redis.call('HSET', KEYS[8], unpack(fields))
redis.call('ZADD', KEYS[4], ARGV[20], id)
index(KEYS[5], {id}, 0)
redis.call('HINCRBY', KEYS[7], 'submitted', 1)
redis.call('ZADD', KEYS[6], 0, 'w')
note('job_created', id, cjson.encode(queue), 'queued', now, '')
local outcome = 'fired'
if not is_tick then outcome = 'triggered' end
redis.call('HSET', KEYS[3], p .. 'last_job', id, p .. 'last_run_at', now, p .. 'last_tick', ARGV[10],
  p .. 'last_outcome', outcome)
redis.call('HINCRBY', KEYS[3], p .. 'runs', 1)
flush(channel)
return {'fired', id}
)lua";
    static const redis::script s[2] = {make(body, false), make(body, true)};
    return s[compact ? 1 : 0];
}

const redis::script& schedule_pause() {
    static const redis::script s = make(R"lua(
-- schedule_pause: pauses or resumes a schedule. Resuming a paused schedule
-- restarts it from ARGV[3] (the first tick after now): ticks that fell in the
-- pause are not caught up.
-- KEYS[1] schedules  KEYS[2] schedule_next  KEYS[3] schedule_state
-- ARGV[1] name  ARGV[2] '1' (pause) or '0' (resume)  ARGV[3] next fire ms on resume (0: none)
-- returns 1, or 0 when there is no such schedule
local name = ARGV[1]
if redis.call('HEXISTS', KEYS[1], name) == 0 then return 0 end
local was = redis.call('HGET', KEYS[3], name .. '|paused')
redis.call('HSET', KEYS[3], name .. '|paused', ARGV[2])
if ARGV[2] == '0' and was == '1' then
  if tonumber(ARGV[3]) > 0 then
    redis.call('ZADD', KEYS[2], ARGV[3], name)
  else
    redis.call('ZREM', KEYS[2], name)
  end
end
return 1
)lua");
    return s;
}

const redis::script& schedule_delete() {
    static const redis::script s = make(R"lua(
-- schedule_delete: removes a schedule's definition, next fire time and state
-- (the jobs it made stay). The version counter stays too, so a scheduler
-- still holding the old definition cannot fire a re-created schedule with it.
-- KEYS[1] schedules  KEYS[2] schedule_next  KEYS[3] schedule_state
-- ARGV[1] name
-- returns 1, or 0 when there was no such schedule
local name = ARGV[1]
local p = name .. '|'
local existed = redis.call('HDEL', KEYS[1], name)
redis.call('ZREM', KEYS[2], name)
redis.call('HDEL', KEYS[3], p .. 'timing', p .. 'paused', p .. 'last_job', p .. 'last_run_at',
  p .. 'last_tick', p .. 'last_outcome', p .. 'runs', p .. 'skipped', p .. 'last_skip_at')
return existed
)lua");
    return s;
}

const redis::script& purge_completed() {
    static const redis::script s = make(R"lua(
-- purge_completed: deletes completed (and expired) jobs of one queue (the dashboard's
-- "purge completed") and the janitor's completed jobs past retention: record,
-- progress list, result and index entries. Jobs in any other state are never touched.
-- The candidates come from the `completed` set (checked to be in it) or from `done`
-- entries (each job counted out of `done`); the `done` entries given are deleted.
-- KEYS[1] completed  KEYS[2] all  KEYS[3] done  KEYS[4] meta
--   per job i: KEYS[5+4i] job  KEYS[6+4i] progress  KEYS[7+4i] result  KEYS[8+4i] events (previous version)
-- ARGV[1] tenant ('' = any)  ARGV[2] 'set' (candidates from `completed`) or 'stream'
-- ARGV[3] e, the number of `done` entry ids that follow (deleted after the jobs); then the candidate ids
-- returns the ids deleted
local tenant, from_set = ARGV[1], ARGV[2] == 'set'
local e = tonumber(ARGV[3])
local out = {}
local counted = 0
for i = 0, #ARGV - 4 - e do
  local id = ARGV[4 + e + i]
  local f = redis.call('HMGET', KEYS[5 + 4 * i], 'status', 'tenant')
  if (f[1] == 'completed' or f[1] == 'expired') and (tenant == '' or f[2] == tenant) then
    local listed = redis.call('ZREM', KEYS[1], id) == 1
    if listed or not from_set then
      if not listed then counted = counted + 1 end
      redis.call('ZREM', KEYS[2], id)
      redis.call('DEL', KEYS[5 + 4 * i], KEYS[6 + 4 * i], KEYS[7 + 4 * i], KEYS[8 + 4 * i])
      out[#out + 1] = id
    end
  end
end
if counted > 0 then redis.call('HINCRBY', KEYS[4], 'done', -counted) end
if e > 0 then redis.call('XDEL', KEYS[3], unpack(ARGV, 4, 3 + e)) end
return out
)lua");
    return s;
}

const redis::script& age_jobs() {
    static const redis::script s = make(R"lua(
-- age_jobs: `jobs` entries older than the listing horizon leave the stream; their
-- jobs still there go to the `all` sorted set (read after the stream: docs/keys.md,
-- "Job indexes"), so a job outliving the horizon is still listed.
-- KEYS[1] jobs  KEYS[2] all; per job i: KEYS[3+i] job
-- ARGV[1] e, the number of entry ids that follow (deleted); then the entries' job ids
-- returns the number of jobs moved to `all`
local e = tonumber(ARGV[1])
local kept = {}
for i = 0, #ARGV - 2 - e do
  if redis.call('EXISTS', KEYS[3 + i]) == 1 then
    kept[#kept + 1] = 0; kept[#kept + 1] = ARGV[2 + e + i]
  end
end
if #kept > 0 then redis.call('ZADD', KEYS[2], unpack(kept)) end
if e > 0 then redis.call('XDEL', KEYS[1], unpack(ARGV, 2, 1 + e)) end
return #kept / 2
)lua");
    return s;
}

}  // namespace spool::store::scripts
