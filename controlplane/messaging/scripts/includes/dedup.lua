--[[
  Dedup tables with bounded retention: a sorted set (member -> ms when recorded) as the
  retention index, optionally beside a hash (member -> value). A trim removes members
  recorded before the cutoff, then the oldest beyond the count bound, at most TRIM_STEP
  members per call, so one call never does unbounded work; later calls catch up.
]]
local TRIM_STEP = 1000

local function dedup_trim(zkey, hkey, cutoff, max_count)
  local card = redis.call('ZCARD', zkey)
  if card == 0 then return 0 end
  local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', '(' .. cutoff, 'LIMIT', 0, TRIM_STEP)
  local over = card - #old - max_count
  if over > 0 then
    local extra = redis.call('ZRANGE', zkey, #old, #old + math.min(over, TRIM_STEP) - 1)
    for _, m in ipairs(extra) do old[#old + 1] = m end
  end
  if #old == 0 then return 0 end
  for i = 1, #old, 500 do
    local chunk = { unpack(old, i, math.min(i + 499, #old)) }
    redis.call('ZREM', zkey, unpack(chunk))
    if hkey then redis.call('HDEL', hkey, unpack(chunk)) end
  end
  return #old
end
