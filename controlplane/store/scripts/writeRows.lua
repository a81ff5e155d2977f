--[[
  Writes several rows of one table family in one atomic step, with optimistic versions:
  every row's expected version is checked before anything is written. Each row's secondary
  indexes (sorted sets) and any log entries are written in the same step.

  Input:
    KEYS[...] every row, index and log key the plan names (all in one hash-tag family)
    ARGV[1]   the plan (JSON):
      { rows = [ { k = key number, expect = version | -1 (any) | 0 (must not exist),
                   set = { field = value }, del = { field }, remove = bool,
                   idx = [ { k, member, score } ], unidx = [ { k, member } ] } ],
        logs = [ { k, maxLen, fields = [ f1, v1, ... ] } ] }

  Output:
    { 0, v1, v2, ... } the new version of each row (0 for a removed row)
    { -2, row number (1-based), current version } a row's version did not match
]]
--@include "includes/codes.lua"

local plan = cjson.decode(ARGV[1])
local versions = {}
for i, r in ipairs(plan.rows) do
  local v = tonumber(redis.call('HGET', KEYS[r.k], '_v') or '0')
  if r.expect ~= -1 and v ~= r.expect then return { ERR_STALE, i, v } end
  versions[i] = v
end
local out = { OK }
for i, r in ipairs(plan.rows) do
  if r.remove then
    redis.call('DEL', KEYS[r.k])
    out[#out + 1] = 0
  else
    local args = { '_v', versions[i] + 1 }
    for f, val in pairs(r.set or {}) do
      args[#args + 1] = f
      args[#args + 1] = val
    end
    redis.call('HSET', KEYS[r.k], unpack(args))
    if r.del and #r.del > 0 then redis.call('HDEL', KEYS[r.k], unpack(r.del)) end
    out[#out + 1] = versions[i] + 1
  end
  for _, ix in ipairs(r.idx or {}) do redis.call('ZADD', KEYS[ix.k], ix.score, ix.member) end
  for _, ix in ipairs(r.unidx or {}) do redis.call('ZREM', KEYS[ix.k], ix.member) end
end
for _, l in ipairs(plan.logs or {}) do
  redis.call('XADD', KEYS[l.k], 'MAXLEN', '~', l.maxLen, '*', unpack(l.fields))
end
return out
