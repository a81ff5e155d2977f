--[[
  Pins or unpins a knob: a pinned knob refuses every promotion until it is unpinned.
  Does not change the value or the version; a change appends one audit entry and publishes
  it. Pinning a pinned knob is refused (the pin is another operator's decision), unless it is
  the caller's own pin again: same actor, same reason, on the base version if one is given (a
  resent command or a retry after a lost reply), which changes nothing. Unpinning an unpinned
  knob changes nothing and writes nothing.

  Input:
    KEYS[1] 'knob', KEYS[2] 'audit'
    ARGV[1] '1' pin | '0' unpin, ARGV[2] actor, ARGV[3] reason, ARGV[4] now (ms),
    ARGV[5] audit max length, ARGV[6] knob name, ARGV[7] channel,
    ARGV[8] pin only: the version the caller saw, or '' (a pin holds the value the knob has
            now, so one on a knob that moved since would hold a value the caller never saw)
    ARGV[9] unpin only: who pinned the pin the caller saw, or '' (a pin set since is one the
            caller never saw), ARGV[10] unpin only: that pin's reason, or ''

  Output: { 0, version, 1 } changed; { 0, version, 0 } nothing to do (no audit entry);
    { -1 } missing knob; { -2, current version } stale; { -6, pin reason, pinned by } pinned
    by another (pin), or not the pin ARGV[9] and ARGV[10] name (unpin)
]]
--@include "includes/codes.lua"
--@include "includes/audit.lua"

if redis.call('EXISTS', KEYS[1]) == 0 then return { ERR_MISSING } end
local row = redis.call('HMGET', KEYS[1], 'version', 'pinned', 'pinned_by', 'pin_reason')
local version = tonumber(row[1])
local pinned = row[2] == '1'
local pinnedBy, pinReason = row[3] or '', row[4] or ''
if ARGV[1] == '1' then
  if pinned then
    if pinnedBy == ARGV[2] and pinReason == ARGV[3] and (ARGV[8] == '' or tonumber(ARGV[8]) == version) then
      return { OK, version, 0 }
    end
    return { ERR_STATE, pinReason, pinnedBy }
  end
  if ARGV[8] ~= '' and tonumber(ARGV[8]) ~= version then return { ERR_STALE, version } end
  redis.call('HSET', KEYS[1], 'pinned', '1', 'pinned_by', ARGV[2], 'pin_reason', ARGV[3])
else
  if not pinned then return { OK, version, 0 } end
  if (ARGV[9] ~= '' and pinnedBy ~= ARGV[9]) or (ARGV[10] ~= '' and pinReason ~= ARGV[10]) then
    return { ERR_STATE, pinReason, pinnedBy }
  end
  redis.call('HSET', KEYS[1], 'pinned', '0', 'pinned_by', '', 'pin_reason', '')
end
appendAudit(KEYS[2], ARGV[5], ARGV[4], ARGV[2], ARGV[1] == '1' and 'knob.pin' or 'knob.unpin', ARGV[6],
  cjson.encode({ reason = ARGV[3], version = version }))
redis.call('PUBLISH', ARGV[7], cjson.encode({ name = ARGV[6], version = version, pinned = ARGV[1] == '1' }))
return { OK, version, 1 }
