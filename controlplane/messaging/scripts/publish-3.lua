--[[
  Appends a batch of messages to one partition stream, skipping duplicates, then trims the
  stream to its retention bounds. Two kinds of duplicate are caught:
  - a message whose idempotency key was already published (within the dedup retention):
    it is not appended again and gets the id it got the first time;
  - a whole batch a producer retries after losing the reply (same producer sequence key and
    a sequence number not above the last one recorded): nothing is appended, and the ids and
    duplicate flags of the attempt that stored it come back (a message that attempt appended
    is not a duplicate: this publish stored it once).

  Input:
    KEYS[1] the partition stream
    KEYS[2] publish ids (hash: 'k:' idempotency key -> id; 's:' producer -> its last batch:
            'seq|r|first id,last id' (a contiguous run, no duplicates) or
            'seq|l|duplicate flags (one 0|1 per message)|id,id,...')
    KEYS[3] publish retention index (sorted set: the same members -> ms recorded)
    ARGV[1] now (ms) on the producer's clock: ARGV[3] and ARGV[4] are on it too. The script
            moves them onto Redis's clock (TIME), on which it also scores its records, so
            producers whose clocks differ keep and trim each other's records alike
    ARGV[2] retention: MAXLEN ~ bound
    ARGV[3] retention: MINID ~ bound ('' = no age bound)
    ARGV[4] dedup cutoff (ms): records older than this are forgotten
    ARGV[5] dedup count bound
    ARGV[6] producer sequence key ('' = none)
    ARGV[7] this batch's sequence number
    ARGV[8] n, the number of messages; then per message 3 values:
            idempotency key ('' = none), enqueue time (ms), payload

  Output:
    { 0, batch_duplicate (0|1), id_1, duplicate_1 (0|1), ..., id_n, duplicate_n }
    (a resent batch whose entries were trimmed away since gets '0-0' for those ids; its
    duplicate flags are those of the first attempt)
]]
--@include "includes/codes.lua"
--@include "includes/dedup.lua"

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- Redis's clock less the producer's: the bounds it computed on its own move by it.
local skew = now - tonumber(ARGV[1])
local seq_key = ARGV[6] ~= '' and ('s:' .. ARGV[6])
local seq = tonumber(ARGV[7])
local n = tonumber(ARGV[8])

if seq_key then
  local prev = redis.call('HGET', KEYS[2], seq_key)
  if prev then
    local prev_seq, form, rest = string.match(prev, '^(%d+)|(%a)|(.*)$')
    if tonumber(prev_seq) >= seq then
      local ids, flags = {}, ''
      if form == 'r' then
        -- A batch without keyed duplicates is one contiguous run of the stream. Trimming
        -- takes the oldest entries, so the ones still there are the batch's last.
        local first, last = string.match(rest, '^([^,]+),(.+)$')
        local got = redis.call('XRANGE', KEYS[1], first, last, 'COUNT', n)
        for i = 1, n - #got do ids[i] = '0-0' end
        for i, e in ipairs(got) do ids[n - #got + i] = e[1] end
      else
        local f, list = string.match(rest, '^([01]*)|(.*)$')
        -- A record without flags (written by an older script): all duplicates, as it said.
        flags = f or string.rep('1', n)
        for id in string.gmatch(list or rest, '[^,]+') do ids[#ids + 1] = id end
      end
      local out = { OK, 1 }
      for i = 1, n do
        out[#out + 1] = ids[i] or '0-0' -- '0-0': stored, but trimmed away since
        out[#out + 1] = string.sub(flags, i, i) == '1' and 1 or 0
      end
      return out
    end
  end
end

local out = { OK, 0 }
local ids = {}
local flags = {}
local keyed_dups = 0
-- The dedup cutoff on Redis's clock. A key's record older than it is forgotten, trimmed or
-- not yet (the trim below runs last and takes at most TRIM_STEP a call): the key is stored
-- again. Its stream id's milliseconds are when it was recorded (XADD * on this clock).
local cutoff = math.floor(tonumber(ARGV[4]) + skew)
for i = 0, n - 1 do
  local key = ARGV[9 + i * 3]
  local t = ARGV[10 + i * 3]
  local data = ARGV[11 + i * 3]
  local id, dup = nil, 0
  if key == '' then
    id = redis.call('XADD', KEYS[1], '*', 'd', data, 't', t)
  else
    local member = 'k:' .. key
    id = redis.call('HGET', KEYS[2], member)
    if id and tonumber(string.match(id, '^(%d+)')) < cutoff then id = nil end
    if id then
      dup = 1
      keyed_dups = keyed_dups + 1
    else
      id = redis.call('XADD', KEYS[1], '*', 'd', data, 't', t, 'k', key)
      redis.call('HSET', KEYS[2], member, id)
      redis.call('ZADD', KEYS[3], now, member)
    end
  end
  out[#out + 1] = id
  out[#out + 1] = dup
  ids[#ids + 1] = id
  flags[#flags + 1] = dup
end

if seq_key then
  local record
  if keyed_dups == 0 then
    record = seq .. '|r|' .. ids[1] .. ',' .. ids[#ids]
  else
    record = seq .. '|l|' .. table.concat(flags) .. '|' .. table.concat(ids, ',')
  end
  redis.call('HSET', KEYS[2], seq_key, record)
  redis.call('ZADD', KEYS[3], now, seq_key)
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
if ARGV[3] ~= '' then
  local minMs = tonumber(string.match(ARGV[3], '^(%d+)')) + skew
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d-0', math.max(0, math.floor(minMs))))
end
dedup_trim(KEYS[3], KEYS[2], string.format('%d', cutoff), tonumber(ARGV[5]))
return out
