--[[
  Writes several rows of one table family in one atomic step, with optimistic versions:
  every row's expected version is checked before anything is written. Each row's secondary
  indexes (sorted sets) and any log entries are written in the same step.

  A removed row's version is not forgotten: the table family keeps the highest version any
  of its rows had when removed (one integer per table and family, the `meta` key), and a row
  created where none exists starts above it. So a row removed and created again never shows
  a version its removed self had, and a writer holding a version of the removed row is
  refused as stale instead of overwriting the new one. (The mark only grows; it costs one
  key per table and family, written only by removes, and never expires, so the guarantee has
  no time limit. Rows created after a remove start above 1: versions are compared for
  equality only.)

  A refused write changes nothing: every check that could fail (versions, a row named twice,
  index scores, log entries, the types of the keys written) runs before the first write.
  table.ts validates the plan first, so the error replies below only guard against a caller
  that bypassed it; a version mismatch is the one expected refusal.

  Input:
    KEYS[...] every row, index, log and meta key the plan names (all in one hash-tag family)
    ARGV[1]   the plan (JSON):
      { meta = key number of the table's removed-version mark (a string; required with rows),
        call = { k = key number of this call's record, ttl = ms } (optional: a success is
               kept there, and a run finding it answers it and changes nothing),
        rows = [ { k = key number, expect = version | -1 (any) | 0 (must not exist),
                   set = { field = value }, del = { field }, remove = bool,
                   idx = [ { k, member, score } ], unidx = [ { k, member } ] } ],
        logs = [ { k, maxLen, fields = [ f1, v1, ... ] } ] }

  Output:
    { 0, v1, v2, ... } the new version of each row (0 for a removed row)
    { -2, row number (1-based), current version } a row's version did not match
    an error reply (nothing written) for a malformed plan or a key of the wrong type
]]
--@include "includes/codes.lua"

-- unpack() fails past Lua's C stack limit (8000 values): refuse larger commands up front.
local MAX_ARGS = 7900

local plan = cjson.decode(ARGV[1])
local function refuse(msg) return redis.error_reply('writeRows: ' .. msg) end
local function finite(n) return type(n) == 'number' and n == n and n ~= math.huge and n ~= -math.huge end
local function keyOf(k)
  if type(k) ~= 'number' or KEYS[k] == nil then return nil end
  return KEYS[k]
end

-- The same call run again (ioredis resends a script whose reply a dropped connection lost)
-- answers what its first run did: its checks would now see that run's versions as stale.
local callKey = nil
if plan.call ~= nil then
  callKey = keyOf(plan.call.k)
  if not callKey or not finite(plan.call.ttl) or plan.call.ttl < 1 then
    return refuse('bad call record')
  end
  local done = redis.call('GET', callKey)
  if done then return cjson.decode(done) end
end

-- Checks, before any write.
if #plan.rows > 0 then
  if not keyOf(plan.meta) then return refuse('bad meta key number') end
  local t = redis.call('TYPE', KEYS[plan.meta]).ok
  if t ~= 'none' and t ~= 'string' then
    return refuse(KEYS[plan.meta] .. ' holds a ' .. t .. ', not a string')
  end
end
-- The highest version a removed row of the table had (read at most once).
local removedMark
local function removedFloor()
  if removedMark == nil then
    removedMark = tonumber(redis.call('GET', KEYS[plan.meta]) or '0') or 0
  end
  return removedMark
end
local versions = {}
local bases = {}
local seen = {}
local keyTypes = {}
local function needType(k, want)
  local key = keyOf(k)
  if not key then return 'bad key number ' .. tostring(k) end
  if keyTypes[k] == nil then keyTypes[k] = redis.call('TYPE', key).ok end
  if keyTypes[k] ~= 'none' and keyTypes[k] ~= want then
    return key .. ' holds a ' .. keyTypes[k] .. ', not a ' .. want
  end
  return nil
end
for i, r in ipairs(plan.rows) do
  local key = keyOf(r.k)
  if not key then return refuse('row ' .. i .. ': bad key number') end
  if seen[r.k] then return refuse('row ' .. i .. ': ' .. key .. ' appears twice') end
  seen[r.k] = true
  if type(r.expect) ~= 'number' then return refuse('row ' .. i .. ': bad expected version') end
  local n = 0
  for f, val in pairs(r.set or {}) do
    if type(f) ~= 'string' or type(val) ~= 'string' then
      return refuse('row ' .. i .. ': field values must be strings')
    end
    n = n + 2
  end
  if n + 2 > MAX_ARGS or #(r.del or {}) > MAX_ARGS then
    return refuse('row ' .. i .. ': too many fields')
  end
  for _, ix in ipairs(r.idx or {}) do
    if not finite(ix.score) then return refuse('row ' .. i .. ': index score not a finite number') end
    if type(ix.member) ~= 'string' then return refuse('row ' .. i .. ': bad index member') end
    local bad = needType(ix.k, 'zset')
    if bad then return refuse(bad) end
  end
  for _, ix in ipairs(r.unidx or {}) do
    if type(ix.member) ~= 'string' then return refuse('row ' .. i .. ': bad index member') end
    local bad = needType(ix.k, 'zset')
    if bad then return refuse(bad) end
  end
  local v = tonumber(redis.call('HGET', key, '_v') or '0')
  if r.expect ~= -1 and v ~= r.expect then return { ERR_STALE, i, v } end
  versions[i] = v
  -- A row created (none exists) continues above every removed row's version.
  if v == 0 and not r.remove then bases[i] = removedFloor() else bases[i] = v end
end
for i, l in ipairs(plan.logs or {}) do
  if type(l.maxLen) ~= 'number' or l.maxLen < 0 or l.maxLen % 1 ~= 0 then
    return refuse('log ' .. i .. ': maxLen must be a non-negative integer')
  end
  local n = #(l.fields or {})
  if n == 0 or n % 2 ~= 0 or n + 5 > MAX_ARGS then
    return refuse('log ' .. i .. ': fields must be 1 to ' .. math.floor((MAX_ARGS - 5) / 2) .. ' pairs')
  end
  for _, s in ipairs(l.fields) do
    if type(s) ~= 'string' then return refuse('log ' .. i .. ': field names and values must be strings') end
  end
  local bad = needType(l.k, 'stream')
  if bad then return refuse(bad) end
end

-- Writes.
local out = { OK }
local removedTop = 0
for i, r in ipairs(plan.rows) do
  if r.remove then
    redis.call('DEL', KEYS[r.k])
    if versions[i] > removedTop then removedTop = versions[i] end
    out[#out + 1] = 0
  else
    local args = { '_v', bases[i] + 1 }
    for f, val in pairs(r.set or {}) do
      args[#args + 1] = f
      args[#args + 1] = val
    end
    redis.call('HSET', KEYS[r.k], unpack(args))
    if r.del and #r.del > 0 then redis.call('HDEL', KEYS[r.k], unpack(r.del)) end
    out[#out + 1] = bases[i] + 1
  end
  for _, ix in ipairs(r.idx or {}) do redis.call('ZADD', KEYS[ix.k], ix.score, ix.member) end
  for _, ix in ipairs(r.unidx or {}) do redis.call('ZREM', KEYS[ix.k], ix.member) end
end
if removedTop > 0 and removedTop > removedFloor() then
  redis.call('SET', KEYS[plan.meta], removedTop)
end
for _, l in ipairs(plan.logs or {}) do
  redis.call('XADD', KEYS[l.k], 'MAXLEN', '~', l.maxLen, '*', unpack(l.fields))
end
if callKey then redis.call('SET', callKey, cjson.encode(out), 'PX', plan.call.ttl) end
return out
