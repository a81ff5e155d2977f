--[[
  Pins or unpins a knob: a pinned knob refuses every promotion until it is unpinned.
  Does not change the value or the version; appends one audit entry.

  Input:
    KEYS[1] 'knob', KEYS[2] 'audit'
    ARGV[1] '1' pin | '0' unpin, ARGV[2] actor, ARGV[3] reason, ARGV[4] now (ms),
    ARGV[5] audit max length, ARGV[6] knob name, ARGV[7] channel

  Output: { 0, version } on success; { -1 } missing knob
]]
--@include "includes/codes.lua"
--@include "includes/audit.lua"

if redis.call('EXISTS', KEYS[1]) == 0 then return { ERR_MISSING } end
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'pinned', '1', 'pinned_by', ARGV[2], 'pin_reason', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'pinned', '0', 'pinned_by', '', 'pin_reason', '')
end
local version = tonumber(redis.call('HGET', KEYS[1], 'version'))
appendAudit(KEYS[2], ARGV[5], ARGV[4], ARGV[2], ARGV[1] == '1' and 'knob.pin' or 'knob.unpin', ARGV[6],
  cjson.encode({ reason = ARGV[3], version = version }))
redis.call('PUBLISH', ARGV[7], cjson.encode({ name = ARGV[6], version = version, pinned = ARGV[1] == '1' }))
return { OK, version }
