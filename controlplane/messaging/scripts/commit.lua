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
  asking for the whole batch with XCLAIM JUSTID or XPENDING) and the handler's writes. A run of INCRBY
  writes to one key (the common counter) is applied as one INCRBY of the sum; if that fails
  (a non-number, an overflow) nothing was done and the run is replayed write by write, so
  only the failing messages are flagged. Every write command in a script is also an AOF
  record, so fewer commands cost less twice.

  Input:
    KEYS[1] the partition stream
    KEYS[2] the group's dedup table (sorted set: identity -> the stream id of the message
            applied as a number, its milliseconds (its publish time on Redis's clock) plus its
            sequence in thousandths (a sequence past 999 counts as 999; thousandths stay
            apart in a double at today's milliseconds, whose step is 2^-12), so the table is in
            stream order message by message and a lost group can be made again at its oldest
            record; see partition-worker.ts)
    KEYS[3] the partition's dead-letter stream
    KEYS[4] this commit's results key (unique per commit, not per attempt): the first attempt
            that runs stores its results there for ARGV[8] ms; every attempt looks there
            first and, finding them, returns them (the caller's retry after a lost reply,
            and ioredis's own resend of a command a dropped connection left unanswered,
            which carries the first attempt's arguments)
    KEYS[5..] output keys the writes name (all in the partition's family)
    ARGV[1] group
    ARGV[2] now (ms; the consumer's clock, recorded in dead letters)
    ARGV[3] dedup cutoff (stream-id ms): records of messages published before this are
            forgotten
    ARGV[4] dedup count bound
    ARGV[5] dead-letter stream MAXLEN ~ bound
    ARGV[6] number of messages to apply, ARGV[7] number to dead-letter
    ARGV[8] results key TTL (ms); then
      per message to apply: stream id, identity ('' = the stream id), number of writes, and
           per write: command, output key number (index into KEYS), number of arguments,
           arguments...
      per message to dead-letter: stream id, reason, deliveries, idempotency key, payload,
           enqueue time (ms)

  Output:
    { 0, r_1, ..., r_n } in input order, with r = 1 applied, 2 duplicate, 3 stale,
    4 dead-lettered, 5 applied but a write failed (e.g. INCRBY on a non-number); on a retry
    of an attempt that did run, exactly that attempt's results (nothing is done again)
    { -10, key number, type needed, type found } a write's key holds another type; nothing
    was done
]]
--@include "includes/codes.lua"
--@include "includes/dedup.lua"
--@include "includes/num.lua"

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
-- Most arguments one write may pass: they go to Redis through unpack, which fails past ~8,000
-- values, and a failure part way through the batch could not be rolled back.
local MAX_WRITE_ARGS = 4000

local group = ARGV[1]
local now = ARGV[2]
local n_apply = tonumber(ARGV[6])
local n_dead = tonumber(ARGV[7])
local FIRST_OUTPUT_KEY = 5

-- An earlier attempt of this commit ran (atomically, all of it): its results, nothing done
-- again.
local stored = redis.call('GET', KEYS[4])
if stored then
  local out = { OK }
  for r in string.gmatch(stored, '%d+') do out[#out + 1] = tonumber(r) end
  return out
end

-- Where each message to apply starts in ARGV, its id and identity. Every write is checked
-- here (command, key, the key's type), before anything is written: a script cannot roll back
-- what it already did.
local starts, ids, identities = {}, {}, {}
local needs = {}
local a = 9
for i = 1, n_apply do
  starts[i] = a
  ids[i] = ARGV[a]
  identities[i] = ARGV[a + 1] ~= '' and ARGV[a + 1] or ARGV[a]
  local nw = NUM[ARGV[a + 2]]
  a = a + 3
  for _ = 1, nw do
    local cmd, k = ARGV[a], NUM[ARGV[a + 1]]
    if not WRITES[cmd] or not k or k < FIRST_OUTPUT_KEY or not KEYS[k] then
      return redis.error_reply('commit: write ' .. tostring(cmd) .. ' to key ' .. tostring(k) .. ' not allowed')
    end
    if not NUM[ARGV[a + 2]] or NUM[ARGV[a + 2]] > MAX_WRITE_ARGS then
      return redis.error_reply('commit: write ' .. cmd .. ' has ' .. tostring(ARGV[a + 2]) ..
        ' arguments, more than ' .. MAX_WRITE_ARGS)
    end
    if WRITES[cmd] ~= '' then
      needs[k] = needs[k] or {}
      needs[k][WRITES[cmd]] = true
    end
    a = a + 3 + NUM[ARGV[a + 2]]
  end
end
local dead_at = a
for k, wants in pairs(needs) do
  local t = redis.call('TYPE', KEYS[k])['ok']
  for want in pairs(wants) do
    if t ~= 'none' and t ~= want then return { ERR_OUTPUT_TYPE, k, want, t } end
  end
end

-- A stream sequence of 1, 2 or 3 digits as thousandths: '.00' .. '7' is 0.007.
local SEQ_DOT = { '.00', '.0', '.' }
local out = { OK }
if n_apply > 0 then
  local scores = {}
  for i = 1, n_apply, CHUNK do
    local got = redis.call('ZMSCORE', KEYS[2], unpack(identities, i, math.min(i + CHUNK - 1, n_apply)))
    for _, score in ipairs(got) do scores[#scores + 1] = score end
  end
  -- An increment by a whole number goes out as INCRBY (HINCRBY), which Redis refuses on a
  -- value an earlier fractional increment left (2.5): such a write is made as INCRBYFLOAT
  -- (HINCRBYFLOAT) instead of being lost. Not an overflow: a float there would lose digits.
  -- Returns the reply, or the error.
  local FLOAT_OF = { INCRBY = 'INCRBYFLOAT', HINCRBY = 'HINCRBYFLOAT' }
  local function write(cmd, key, ...)
    local res = redis.pcall(cmd, key, ...)
    if type(res) == 'table' and res['err'] and FLOAT_OF[cmd]
      and string.find(res['err'], 'not an integer', 1, true) then
      res = redis.pcall(FLOAT_OF[cmd], key, ...)
    end
    return res
  end
  -- The open INCRBY run: its key, the sum, and per write its result slot and argument.
  local run_key, run_sum, run = nil, 0, {}
  local function flush_run()
    if not run_key then return end
    local res = redis.pcall('INCRBY', run_key, string.format('%d', run_sum))
    if type(res) == 'table' and res['err'] then
      for j = 1, #run, 2 do
        local one = write('INCRBY', run_key, run[j + 1])
        if type(one) == 'table' and one['err'] then out[run[j]] = 5 end
      end
    end
    run_key, run_sum, run = nil, 0, {}
  end
  local seen, recorded = {}, {}
  -- A record older than the cutoff is forgotten, trimmed or not yet (the trim below runs last
  -- and takes at most TRIM_STEP a call): a new message with that key was dropped as a
  -- duplicate of one published before the retention window.
  local cutoff = tonumber(ARGV[3])
  for i = 1, n_apply do
    local identity = identities[i]
    local id = ids[i]
    local r
    if seen[identity] then
      redis.call('XACK', KEYS[1], group, id)
      r = 2
    elseif scores[i] and tonumber(scores[i]) >= cutoff then
      redis.call('XACK', KEYS[1], group, id)
      r = 2
      seen[identity] = true
    elseif redis.call('XACK', KEYS[1], group, id) == 0 then
      r = 3
    else
      r = 1
    end
    out[#out + 1] = r
    if r == 1 then
      local slot = #out
      seen[identity] = true
      -- Scored by the message's stream id (see KEYS[2]), not `now`: built from its digits
      -- (formatting a number costs ~2k instructions a message), none for the usual 0.
      local ms, seq = string.match(id, '^(%d+)-(%d+)$')
      if seq == '0' then
        recorded[#recorded + 1] = ms
      else
        recorded[#recorded + 1] = ms .. (SEQ_DOT[#seq] or '.') .. (SEQ_DOT[#seq] and seq or '999')
      end
      recorded[#recorded + 1] = identity
      a = starts[i] + 3
      for _ = 1, NUM[ARGV[starts[i] + 2]] do
        local cmd, key, na = ARGV[a], KEYS[NUM[ARGV[a + 1]]], NUM[ARGV[a + 2]]
        local by = ARGV[a + 3]
        -- Sums stay exact as doubles (each term below 1e15, the sum below 2^52).
        local v = cmd == 'INCRBY' and na == 1 and INT[by]
        if v and run_key == key and math.abs(run_sum + v) < 4.5e15 then
          run_sum = run_sum + v
        else
          flush_run()
          if v then
            run_key, run_sum = key, v
          else
            -- What the type check cannot see (INCRBY on a non-number, a key retyped earlier
            -- in this batch) fails this one write only; the message still counts as
            -- applied, so dedup and XACK stay consistent with what was done.
            local res = write(cmd, key, unpack(ARGV, a + 3, a + 2 + na))
            if type(res) == 'table' and res['err'] then out[slot] = 5 end
          end
        end
        if v then
          run[#run + 1] = slot
          run[#run + 1] = by
        end
        a = a + 3 + na
      end
    end
  end
  flush_run()
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
redis.call('SET', KEYS[4], table.concat(out, ',', 2), 'PX', ARGV[8])
return out
