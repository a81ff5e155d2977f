--[[
  The kill switch: freezes or unfreezes all automation. While frozen, promotions by
  automation actors fail; operators still act. Appends one audit entry.

  Input:
    KEYS[1] 'freeze', KEYS[2] 'audit'
    ARGV[1] '1' freeze | '0' unfreeze, ARGV[2] actor, ARGV[3] reason, ARGV[4] now (ms),
    ARGV[5] audit max length, ARGV[6] channel

  Output: { 0, 1 } changed; { 0, 0 } already in that state (no audit entry)
]]
--@include "includes/codes.lua"
--@include "includes/audit.lua"

local frozen = redis.call('EXISTS', KEYS[1]) == 1
if (ARGV[1] == '1') == frozen then return { OK, 0 } end
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'by', ARGV[2], 'reason', ARGV[3], 'at', ARGV[4])
else
  redis.call('DEL', KEYS[1])
end
appendAudit(KEYS[2], ARGV[5], ARGV[4], ARGV[2], ARGV[1] == '1' and 'knobs.freeze' or 'knobs.unfreeze', '*',
  cjson.encode({ reason = ARGV[3] }))
redis.call('PUBLISH', ARGV[6], cjson.encode({ frozen = ARGV[1] == '1' }))
return { OK, 1 }
