--[[
  Crash recovery: takes over messages of a partition that have been pending longer than the
  visibility timeout (their consumer died or stalled), with XAUTOCLAIM, which counts one
  more delivery. A message whose deliveries now exceed the limit is not handed out again:
  it moves to the dead-letter stream and is acknowledged, in the same atomic step.

  Input:
    KEYS[1] the partition stream
    KEYS[2] the partition's dead-letter stream
    ARGV[1] group
    ARGV[2] consumer (the new owner)
    ARGV[3] visibility timeout (ms): minimum idle time of a message taken over
    ARGV[4] at most this many messages
    ARGV[5] start cursor (stream id; '0-0' for the beginning)
    ARGV[6] delivery limit
    ARGV[7] now (ms)
    ARGV[8] dead-letter stream MAXLEN ~ bound
    ARGV[9] this call's id ('' = none) and ARGV[10] how long its record is kept (ms): a call
            run again under the id (ioredis resends a script a dropped connection left
            unanswered) hands out what the first run took over, still pending, instead of
            nothing (XAUTOCLAIM finds them idle no more: they would wait out another
            visibility timeout and count one more delivery)

  Output:
    { next cursor ('0-0' when the scan is complete), messages trimmed away while pending,
      dead-lettered count, then per message handed out: id, { field, value, ... }, deliveries }
]]
local group = ARGV[1]
local limit = tonumber(ARGV[6])
local record = ARGV[9] and ARGV[9] ~= '' and (KEYS[1] .. '|claim|' .. ARGV[9]) or nil
if record then
  local stored = redis.call('GET', record)
  if stored then
    local f = {}
    for v in string.gmatch(stored, '[^\t]+') do f[#f + 1] = v end
    local out = { f[1], tonumber(f[2]), tonumber(f[3]) }
    for i = 4, #f do
      local e = redis.call('XRANGE', KEYS[1], f[i], f[i])
      local p = redis.call('XPENDING', KEYS[1], group, f[i], f[i], 1)
      if e[1] and p[1] then
        out[#out + 1] = f[i]
        out[#out + 1] = e[1][2]
        out[#out + 1] = p[1][4]
      end
    end
    return out
  end
end
local r = redis.call('XAUTOCLAIM', KEYS[1], group, ARGV[2], ARGV[3], ARGV[5], 'COUNT', ARGV[4])
local deleted = r[3] or {}
local out = { r[1], #deleted, 0 }
for _, entry in ipairs(r[2]) do
  local id = entry[1]
  local p = redis.call('XPENDING', KEYS[1], group, id, id, 1)
  local deliveries = p[1] and p[1][4] or 1
  if deliveries > limit then
    local fields = { 'group', group, 'id', id, 'reason', 'max_deliveries', 'deliveries',
      deliveries, 'at', ARGV[7] }
    for i = 1, #entry[2], 2 do
      fields[#fields + 1] = entry[2][i]
      fields[#fields + 1] = entry[2][i + 1]
    end
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', unpack(fields))
    redis.call('XACK', KEYS[1], group, id)
    out[3] = out[3] + 1
  else
    out[#out + 1] = id
    out[#out + 1] = entry[2]
    out[#out + 1] = deliveries
  end
end
-- Kept only when the call did something: a resend of an empty one rightly finds nothing.
if record and (#out > 3 or out[2] > 0 or out[3] > 0) then
  local ids = { out[1], out[2], out[3] }
  for i = 4, #out, 3 do ids[#ids + 1] = out[i] end
  redis.call('SET', record, table.concat(ids, '\t'), 'PX', ARGV[10])
end
return out
