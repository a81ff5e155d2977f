--[[
  The exactly-once step of a consumer: for a batch of delivered messages of one partition,
  in ONE atomic step, apply each new message's output writes, record it in the group's dedup
  table and XACK it; or move a message that ran out of deliveries to the dead-letter stream
  and XACK it. A crash before this script leaves nothing applied (the messages stay pending
  and are redelivered); after it, everything is applied, and a redelivery is recognised:
  - its identity (producer idempotency key, or stream id) is in the dedup table (or earlier
    in this batch): duplicate;
  - it is no longer pending for the group (acknowledged by a consumer whose dedup record has
    expired, dead-lettered, or trimmed away meanwhile): stale. Neither applies its writes.
  The dedup checks and records are batched (one ZMSCORE, one variadic ZADD); per message
  there is its XACK (whose reply says whether it was still pending: measured cheaper than
  asking for the whole batch with XCLAIM JUSTID or XPENDING) and the handler's writes.

  Input:
    KEYS[1] the partition stream
    KEYS[2] the group's dedup table (sorted set: identity -> ms applied)
    KEYS[3] the partition's dead-letter stream
    KEYS[4..] output keys the writes name (all in the partition's family)
    ARGV[1] group
    ARGV[2] now (ms)
    ARGV[3] dedup cutoff (ms): records older than this are forgotten
    ARGV[4] dedup count bound
    ARGV[5] dead-letter stream MAXLEN ~ bound
    ARGV[6] number of messages to apply, ARGV[7] number to dead-letter; then
      per message to apply: stream id, identity ('' = the stream id), number of writes, and
           per write: command, output key number (index into KEYS), number of arguments,
           arguments...
      per message to dead-letter: stream id, reason, deliveries, idempotency key, payload,
           enqueue time (ms)

  Output:
    { 0, r_1, ..., r_n } in input order, with r = 1 applied, 2 duplicate, 3 stale,
    4 dead-lettered, 5 applied but a write failed (e.g. INCRBY on a non-number)
    { -10, key number, type needed, type found } a write's key holds another type; nothing
    was done
]]
--@include "includes/codes.lua"
--@include "includes/dedup.lua"

-- The writes a handler may make (plain writes to its own keys, nothing that reads or deletes
-- other state or changes the server), with the key type each needs ('' = any).
local WRITES = {
  SET = '', INCRBY = 'string', INCRBYFLOAT = 'string', HSET = 'hash', HINCRBY = 'hash',
  HINCRBYFLOAT = 'hash', SADD = 'set', ZADD = 'zset', ZINCRBY = 'zset', XADD = 'stream',
  PEXPIRE = '',
}
-- A write's key holds another type: nothing was done; the caller finds the message at fault.
local ERR_OUTPUT_TYPE = -10
local CHUNK = 1000

local group = ARGV[1]
local now = ARGV[2]
local n_apply = tonumber(ARGV[6])
local n_dead = tonumber(ARGV[7])

-- Where each message to apply starts in ARGV, its id and identity. Every write is checked
-- here (command, key, the key's type), before anything is written: a script cannot roll back
-- what it already did.
local starts, ids, identities = {}, {}, {}
local needs = {}
local a = 8
for i = 1, n_apply do
  starts[i] = a
  ids[i] = ARGV[a]
  identities[i] = ARGV[a + 1] ~= '' and ARGV[a + 1] or ARGV[a]
  local nw = tonumber(ARGV[a + 2])
  a = a + 3
  for _ = 1, nw do
    local cmd, k = ARGV[a], tonumber(ARGV[a + 1])
    if not WRITES[cmd] or not k or k < 4 or not KEYS[k] then
      return redis.error_reply('commit: write ' .. tostring(cmd) .. ' to key ' .. tostring(k) .. ' not allowed')
    end
    if WRITES[cmd] ~= '' then
      needs[k] = needs[k] or {}
      needs[k][WRITES[cmd]] = true
    end
    a = a + 3 + tonumber(ARGV[a + 2])
  end
end
local dead_at = a
for k, wants in pairs(needs) do
  local t = redis.call('TYPE', KEYS[k])['ok']
  for want in pairs(wants) do
    if t ~= 'none' and t ~= want then return { ERR_OUTPUT_TYPE, k, want, t } end
  end
end

local out = { OK }
if n_apply > 0 then
  local scores = {}
  for i = 1, n_apply, CHUNK do
    local got = redis.call('ZMSCORE', KEYS[2], unpack(identities, i, math.min(i + CHUNK - 1, n_apply)))
    for _, score in ipairs(got) do scores[#scores + 1] = score end
  end
  local seen, recorded = {}, {}
  for i = 1, n_apply do
    local identity = identities[i]
    local r
    if scores[i] or seen[identity] then
      redis.call('XACK', KEYS[1], group, ids[i])
      r = 2
    elseif redis.call('XACK', KEYS[1], group, ids[i]) == 0 then
      r = 3
    else
      r = 1
      seen[identity] = true
      recorded[#recorded + 1] = now
      recorded[#recorded + 1] = identity
      a = starts[i] + 3
      for _ = 1, tonumber(ARGV[starts[i] + 2]) do
        local na = tonumber(ARGV[a + 2])
        -- What the type check cannot see (INCRBY on a non-number, a key retyped earlier in
        -- this batch) fails this one write only; the message still counts as applied, so
        -- dedup and XACK stay consistent with what was done.
        local res = redis.pcall(ARGV[a], KEYS[tonumber(ARGV[a + 1])], unpack(ARGV, a + 3, a + 2 + na))
        if type(res) == 'table' and res['err'] then r = 5 end
        a = a + 3 + na
      end
    end
    out[#out + 1] = r
  end
  for i = 1, #recorded, 2 * CHUNK do
    redis.call('ZADD', KEYS[2], unpack(recorded, i, math.min(i + 2 * CHUNK - 1, #recorded)))
  end
end

a = dead_at
for _ = 1, n_dead do
  local id = ARGV[a]
  local fields = { 'group', group, 'id', id, 'reason', ARGV[a + 1], 'deliveries', ARGV[a + 2],
    'k', ARGV[a + 3], 'd', ARGV[a + 4], 't', ARGV[a + 5], 'at', now }
  a = a + 6
  if redis.call('XACK', KEYS[1], group, id) == 1 then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
    out[#out + 1] = 4
  else
    out[#out + 1] = 3
  end
end

dedup_trim(KEYS[2], false, ARGV[3], tonumber(ARGV[4]))
return out
