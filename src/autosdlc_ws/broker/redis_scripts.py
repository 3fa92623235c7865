"""The Lua scripts of the Redis broker (kept as strings so they ship inside the package).

Every script takes the same eight keys, all under one prefix (the default
prefix holds a `{hash tag}`, so on Redis Cluster they share one slot):

    KEYS[1] <prefix>epoch     random string; created when absent
    KEYS[2] <prefix>seq       the last offset handed out in this epoch
    KEYS[3] <prefix>log       Stream; entry id "<offset>-0", fields t (ms), e (event JSON)
    KEYS[4] <prefix>ids       sorted set: member event id, score its offset
    KEYS[5] <prefix>lv:order  sorted set: last-value key, score the offset of its event
    KEYS[6] <prefix>lv:val    hash: last-value key -> "<ms> <event JSON>"
    KEYS[7] <prefix>lv:tags   hash: last-value key -> its event's index tags, one per line
    KEYS[8] <prefix>lv:idx    sorted set, all scores 0, read by lex range:
                              "t|<key>" (by type: keys start with "<type>|") and
                              "r|<tag>|<key>" (by resource value)

The last values (`core.last_values`: key "<type>|<first resource tag>", tags
like `agentId="a1"`) are written by PUBLISH itself, so the log and the
snapshot never disagree about what was published.

and `ARGV[1]` is a fresh random epoch, used only when the epoch key is gone.
A missing epoch means Redis lost its data (restart without persistence,
FLUSHALL, eviction): the other keys are then deleted too, so offsets start
again at 1 under the new epoch and nothing from the old one can be mistaken
for the new one.

Timestamps come from Redis's own clock (`TIME`), so every worker agrees on
the age of an entry. Scripts are replicated by effects (the default since
Redis 5), which is what makes `TIME` in a writing script legal.
"""

from __future__ import annotations

_PROLOGUE = r"""
if redis.replicate_commands then pcall(redis.replicate_commands) end
local function ensure_epoch()
  local epoch = redis.call('GET', KEYS[1])
  if not epoch then
    epoch = ARGV[1]
    redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
    redis.call('SET', KEYS[1], epoch)
  end
  return epoch
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function entry_offset(entry)
  return tonumber(string.match(entry[1], '^(%d+)'))
end
local function lv_drop(key)
  local tags = redis.call('HGET', KEYS[7], key)
  if tags then
    for t in string.gmatch(tags, '[^\n]+') do redis.call('ZREM', KEYS[8], 'r|' .. t .. '|' .. key) end
  end
  redis.call('ZREM', KEYS[8], 't|' .. key)
  redis.call('HDEL', KEYS[7], key)
  redis.call('HDEL', KEYS[6], key)
  redis.call('ZREM', KEYS[5], key)
end
local function first_offset(seq)
  local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
  if first[1] then return entry_offset(first[1]) end
  return seq + 1
end
"""

#: ARGV: epoch candidate, maxlen, channel, last-value max keys (0: off),
#: last-value TTL ms, then (event id, event JSON, last-value key, index tags
#: joined by newlines) for each event.
#: Returns {epoch, offset1, duplicate1, offset2, duplicate2, ...}.
#:
#: An id already in `ids` is a duplicate: not appended, not published, its
#: first offset returned. Otherwise the event is appended (XADD with the
#: offset as entry id, so a range of offsets is a direct XRANGE), becomes the
#: last value of its key, and all new events of the call go out in ONE
#: Pub/Sub message:
#:     "<epoch>\n<offset> <json>\n<offset> <json>..."
#: (compact JSON never holds a raw newline). `seq` is written after each XADD
#: so a failure part-way never leaves the counter behind the stream.
#: Last values: the index entries change only when the tags do (an agent
#: reporting again costs HGET + HSET + ZADD); past max keys the oldest go,
#: and every 64 offsets expired ones are swept (reads skip them meanwhile).
PUBLISH = _PROLOGUE + r"""
local epoch = ensure_epoch()
local now = now_ms()
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local seq_before = seq
local lv_max = tonumber(ARGV[4])
local out = {epoch}
local lines = {epoch}
for i = 6, #ARGV, 4 do
  local id = ARGV[i]
  local known = redis.call('ZSCORE', KEYS[4], id)
  if known then
    out[#out + 1] = tonumber(known)
    out[#out + 1] = 1
  else
    local off = seq + 1
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], string.format('%d-0', off),
               't', string.format('%d', now), 'e', ARGV[i + 1])
    seq = off
    redis.call('SET', KEYS[2], string.format('%d', seq))
    redis.call('ZADD', KEYS[4], string.format('%d', off), id)
    out[#out + 1] = off
    out[#out + 1] = 0
    lines[#lines + 1] = string.format('%d ', off) .. ARGV[i + 1]
    local key, tags = ARGV[i + 2], ARGV[i + 3]
    if lv_max > 0 and key ~= '' then
      local old_tags = redis.call('HGET', KEYS[7], key)
      if old_tags ~= tags then
        if old_tags then
          for t in string.gmatch(old_tags, '[^\n]+') do redis.call('ZREM', KEYS[8], 'r|' .. t .. '|' .. key) end
        else
          redis.call('ZADD', KEYS[8], 0, 't|' .. key)
        end
        for t in string.gmatch(tags, '[^\n]+') do redis.call('ZADD', KEYS[8], 0, 'r|' .. t .. '|' .. key) end
        redis.call('HSET', KEYS[7], key, tags)
      end
      redis.call('HSET', KEYS[6], key, string.format('%d ', now) .. ARGV[i + 1])
      redis.call('ZADD', KEYS[5], string.format('%d', off), key)
    end
  end
end
if #lines > 1 then
  redis.call('PUBLISH', ARGV[3], table.concat(lines, '\n'))
  if lv_max > 0 then
    local over = redis.call('ZCARD', KEYS[5]) - lv_max
    if over > 0 then
      for _, key in ipairs(redis.call('ZRANGE', KEYS[5], 0, over - 1)) do lv_drop(key) end
    end
  end
  -- MAXLEN ~ drops whole stream nodes: every 64 offsets, forget the ids of
  -- what was dropped (history reads prune exactly, in TRIM, before a lookup),
  -- and sweep expired last values (oldest offsets are the oldest writes)
  if math.floor(seq / 64) ~= math.floor(seq_before / 64) then
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('(%d', first_offset(seq)))
    local cutoff = now - tonumber(ARGV[5])
    for _, key in ipairs(redis.call('ZRANGE', KEYS[5], 0, 63)) do
      local val = redis.call('HGET', KEYS[6], key)
      if val and tonumber(string.match(val, '^(%d+) ')) >= cutoff then break end
      lv_drop(key)
    end
  end
end
return out
"""

#: ARGV: epoch candidate. Returns {epoch, seq}.
HEAD = _PROLOGUE + r"""
local epoch = ensure_epoch()
return {epoch, tonumber(redis.call('GET', KEYS[2]) or '0')}
"""

#: ARGV: epoch candidate, max age in ms, event id ('' for none).
#: Drops entries older than the max age (binary search on offsets, whose
#: timestamps only grow, then XTRIM MINID), forgets the ids of everything
#: dropped, and answers {epoch, seq, first kept offset, offset of the event
#: id or -1}. `first kept` is seq + 1 when the log is empty.
TRIM = _PROLOGUE + r"""
local epoch = ensure_epoch()
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local cutoff = now_ms() - tonumber(ARGV[2])
local function entry_time(entry)
  local f = entry[2]
  for j = 1, #f, 2 do
    if f[j] == 't' then return tonumber(f[j + 1]) end
  end
  return 0
end
local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
local kept = seq + 1
if first then
  kept = entry_offset(first)
  if entry_time(first) < cutoff then
    local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
    local hi
    if entry_time(last) < cutoff then
      hi = entry_offset(last) + 1
    else
      -- invariant: every entry <= lo is expired, every entry >= hi is kept
      local lo = entry_offset(first)
      hi = entry_offset(last)
      while hi - lo > 1 do
        local mid = math.floor((lo + hi) / 2)
        local e = redis.call('XRANGE', KEYS[3], string.format('%d-0', mid), '+', 'COUNT', 1)[1]
        if e and entry_time(e) < cutoff and entry_offset(e) < hi then
          lo = entry_offset(e)
        else
          hi = mid
        end
      end
    end
    redis.call('XTRIM', KEYS[3], 'MINID', string.format('%d-0', hi))
    kept = first_offset(seq)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('(%d', kept))
local found = -1
if ARGV[3] ~= '' then
  local score = redis.call('ZSCORE', KEYS[4], ARGV[3])
  if score then found = tonumber(score) end
end
return {epoch, seq, kept, found}
"""

#: ARGV: epoch candidate, TTL ms, lookup kind ('t' by type, 'r' by resource
#: tag), the event types wanted (space-separated), then the types or tags to
#: look up. Returns {epoch, seq, offset1, value1, offset2, value2, ...}: the
#: last values found (each "<ms> <event JSON>") of a wanted type and younger
#: than the TTL, in no order. Each lookup is one lex range on the index: the
#: work is the entries found, never the size of the store. Read in the same
#: script as `seq`, so the answer is exactly the log up to that offset.
SNAPSHOT = _PROLOGUE + r"""
local epoch = ensure_epoch()
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local cutoff = now_ms() - tonumber(ARGV[2])
local wanted = {}
for t in string.gmatch(ARGV[4], '%S+') do wanted[t] = true end
local out = {epoch, seq}
local seen = {}
for i = 5, #ARGV do
  local prefix = ARGV[3] .. '|' .. ARGV[i] .. '|'
  local skip = #prefix
  if ARGV[3] == 't' then skip = 2 end
  for _, member in ipairs(redis.call('ZRANGEBYLEX', KEYS[8], '[' .. prefix, '[' .. prefix .. '\255')) do
    local key = string.sub(member, skip + 1)
    if not seen[key] and wanted[string.match(key, '^([^|]*)|')] then
      seen[key] = true
      local val = redis.call('HGET', KEYS[6], key)
      if val and tonumber(string.match(val, '^(%d+) ')) >= cutoff then
        out[#out + 1] = redis.call('ZSCORE', KEYS[5], key)
        out[#out + 1] = val
      end
    end
  end
end
return out
"""

#: ARGV: epoch candidate, the epoch the caller saw. Returns the epoch now.
#: A log that is still in that epoch is discarded and starts again in the
#: candidate: what a worker does when the log is shorter than what it already
#: delivered (a failover to a replica that had not received the newest
#: writes), so the lost offsets are never handed out again under the same
#: epoch. Whoever comes second finds the epoch already changed.
NEW_EPOCH = _PROLOGUE + r"""
local epoch = ensure_epoch()
if epoch ~= ARGV[2] then return epoch end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

#: ARGV: epoch candidate, expected epoch, then (offset, event id) pairs.
#: Records ids of events that never went through the log (the local outage
#: alerts) at the offset they followed, so a client whose last event was one
#: of them can still resume by id. Ignored if the epoch has changed.
REMEMBER_IDS = _PROLOGUE + r"""
local epoch = ensure_epoch()
if epoch ~= ARGV[2] then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[4], 'NX', ARGV[i], ARGV[i + 1])
end
return 1
"""



def log_scripts(*, sharded: bool = False) -> dict[str, str]:
    """The log's scripts by name; `sharded` (Redis Cluster) publishes with
    `SPUBLISH`, whose channel shares the slot of the script's keys."""
    scripts = {"PUBLISH": PUBLISH, "HEAD": HEAD, "TRIM": TRIM, "REMEMBER_IDS": REMEMBER_IDS,
               "SNAPSHOT": SNAPSHOT, "NEW_EPOCH": NEW_EPOCH}
    if sharded:
        scripts["PUBLISH"] = PUBLISH.replace("redis.call('PUBLISH',", "redis.call('SPUBLISH',")
    return scripts

# --- shared limits -------------------------------------------------------------------------
#
# These scripts take their own keys (not the four above), each under the same
# prefix and so, with the default `{hash tag}` prefix, in the same Cluster slot:
#
#     <prefix>slots:<identity>   hash: connection holder id -> lease expiry (Redis ms);
#                                the key's TTL covers the latest expiry
#     <prefix>rate:<name>:<id>   hash: tokens (float), ts (Redis ms of the last refill);
#                                expires once the bucket would be full again
#
# Times come from Redis's `TIME`, so workers on hosts whose clocks disagree
# still agree on every lease and every refill.

_LIMITS_PROLOGUE = r"""
if redis.replicate_commands then pcall(redis.replicate_commands) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep_alive(key, lease)
  if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
end
"""

#: KEYS: slots key. ARGV: holder id, limit, lease ms. Returns {taken (1/0), live holders}.
#:
#: A holder already present keeps its slot (the call renews its lease), so a
#: retried acquire never takes two. Below the limit a slot is taken at once
#: (O(1)); at the limit, holders whose lease has run out (their worker died,
#: or lost Redis for a whole lease) are dropped first and the rest counted.
ACQUIRE_SLOT = _LIMITS_PROLOGUE + r"""
local now = now_ms()
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local live = redis.call('HLEN', KEYS[1])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  if live >= limit then
    local all = redis.call('HGETALL', KEYS[1])
    for i = 1, #all, 2 do
      if tonumber(all[i + 1]) <= now then
        redis.call('HDEL', KEYS[1], all[i])
        live = live - 1
      end
    end
    if live >= limit then return {0, live} end
  end
  live = live + 1
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', now + lease))
keep_alive(KEYS[1], lease)
return {1, live}
"""

#: KEYS: one slots key per identity. ARGV: lease ms, then for each key its
#: holder count followed by the holder ids. Every holder named gets a fresh
#: lease, and is written back if it is missing (a Redis that lost its data,
#: or a slot taken while Redis was unreachable): a live connection counts.
REFRESH_SLOTS = _LIMITS_PROLOGUE + r"""
local lease = tonumber(ARGV[1])
local expiry = string.format('%d', now_ms() + lease)
local a = 2
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n do
    redis.call('HSET', KEYS[k], ARGV[a], expiry)
    a = a + 1
  end
  keep_alive(KEYS[k], lease)
end
return #KEYS
"""

#: KEYS: bucket key. ARGV: rate per second, burst, cost.
#: Returns 0 when the cost was taken, else the ms until it could be.
#: A missing key is a full bucket, which is why the key may expire as soon
#: as the bucket would have refilled: an idle identity leaves nothing behind.
TAKE_TOKENS = _LIMITS_PROLOGUE + r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local per_ms = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(state[1]), tonumber(state[2])
if tokens == nil or ts == nil then
  tokens, ts = burst, now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * per_ms)
  ts = now
end
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
elseif per_ms <= 0 then
  wait = 60000
else
  wait = math.max(1, math.ceil((cost - tokens) / per_ms))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.3f', ts))
local ttl = 60000
if per_ms > 0 then ttl = math.ceil((burst - tokens) / per_ms) + 1000 end
redis.call('PEXPIRE', KEYS[1], ttl)
return wait
"""
