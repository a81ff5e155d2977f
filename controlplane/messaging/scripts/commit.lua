--[[
  The exactly-once step of a consumer: for a batch of delivered messages of one partition,
  in ONE atomic step, apply each new message's output writes, record it in the group's dedup
  table and XACK it; or move a message that ran out of deliveries to the dead-letter stream
  and XACK it. A crash before this script leaves nothing applied (the messages stay pending
  and are redelivered); after it, everything is applied, and a redelivery is recognised:
  - its identity (producer idempotency key, or stream id) is in the dedup table: duplicate;
  - it is no longer pending for the group (acknowledged by a consumer whose dedup record has
    expired, or dead-lettered meanwhile): stale. Neither applies its writes again.

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
    ARGV[6] n, the number of messages; then per message:
      'a', stream id, identity, number of writes, then per write:
           command, output key number (index into KEYS), number of arguments, arguments...
      'x', stream id, reason, deliveries, identity, payload, enqueue time (ms)

  Output:
    { 0, r_1, ..., r_n } with r = 1 applied, 2 duplicate, 3 stale, 4 dead-lettered
]]
--@include "includes/codes.lua"
--@include "includes/dedup.lua"

-- The writes a handler may make: plain writes to its own keys, nothing that reads or deletes
-- other state or changes the server.
local WRITES = {
  SET = true, INCRBY = true, INCRBYFLOAT = true, HSET = true, HINCRBY = true,
  HINCRBYFLOAT = true, SADD = true, ZADD = true, ZINCRBY = true, XADD = true,
  RPUSH = true, PEXPIRE = true,
}

local group = ARGV[1]
local now = ARGV[2]
local n = tonumber(ARGV[6])
local out = { OK }
local a = 7

for _ = 1, n do
  local mode = ARGV[a]
  local id = ARGV[a + 1]
  if mode == 'a' then
    local identity = ARGV[a + 2]
    local nw = tonumber(ARGV[a + 3])
    a = a + 4
    local r
    if redis.call('ZSCORE', KEYS[2], identity) then
      redis.call('XACK', KEYS[1], group, id)
      r = 2
    elseif redis.call('XACK', KEYS[1], group, id) == 0 then
      r = 3
    else
      r = 1
    end
    for _ = 1, nw do
      local cmd = ARGV[a]
      local key = KEYS[tonumber(ARGV[a + 1])]
      local na = tonumber(ARGV[a + 2])
      if r == 1 then
        if not WRITES[cmd] or not key or tonumber(ARGV[a + 1]) < 4 then
          return redis.error_reply('commit: write ' .. tostring(cmd) .. ' not allowed')
        end
        redis.call(cmd, key, unpack(ARGV, a + 3, a + 2 + na))
      end
      a = a + 3 + na
    end
    if r == 1 then redis.call('ZADD', KEYS[2], now, identity) end
    out[#out + 1] = r
  else
    local fields = { 'group', group, 'id', id, 'reason', ARGV[a + 2], 'deliveries', ARGV[a + 3],
      'k', ARGV[a + 4], 'd', ARGV[a + 5], 't', ARGV[a + 6], 'at', now }
    a = a + 7
    if redis.call('XACK', KEYS[1], group, id) == 1 then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
      out[#out + 1] = 4
    else
      out[#out + 1] = 3
    end
  end
end

dedup_trim(KEYS[2], false, ARGV[3], tonumber(ARGV[4]))
return out
