--[[
  Changes a knob's value in one atomic step: checks the base version, the pin and the
  global freeze, writes the row, bumps the version, appends history and audit, bumps the
  epoch and publishes the change. Value-level rules (type, domain, step, cooldown) are
  checked by the caller against the row at the base version; the version check here makes
  that sound.

  Input:
    KEYS[1] 'knob'      row hash
    KEYS[2] 'history'   stream of this knob's changes
    KEYS[3] 'audit'     audit stream
    KEYS[4] 'freeze'    freeze switch (exists = frozen)
    KEYS[5] 'epoch'     counter bumped on every value change
    KEYS[6] 'index'     sorted set name -> updated_at

    ARGV[1] base version
    ARGV[2] new value (JSON)
    ARGV[3] actor
    ARGV[4] actor kind: operator | automation | system
    ARGV[5] reason
    ARGV[6] proposal id ('' when none)
    ARGV[7] evidence (JSON)
    ARGV[8] now (ms)
    ARGV[9] channel to publish on
    ARGV[10] history max length
    ARGV[11] audit max length
    ARGV[12] kind: promote | rollback
    ARGV[13] knob name

  Output:
    { 0, new version, epoch } on success
    { -1 } missing knob, { -2, current version } stale, { -3, pinned by } pinned,
    { -4, frozen by } frozen
]]
--@include "includes/codes.lua"
--@include "includes/audit.lua"

if redis.call('EXISTS', KEYS[1]) == 0 then return { ERR_MISSING } end
local row = redis.call('HMGET', KEYS[1], 'version', 'value', 'pinned', 'pinned_by')
local version = tonumber(row[1])
if version ~= tonumber(ARGV[1]) then return { ERR_STALE, version } end
if row[3] == '1' then return { ERR_PINNED, row[4] or '' } end
if ARGV[4] == 'automation' and redis.call('EXISTS', KEYS[4]) == 1 then
  return { ERR_FROZEN, redis.call('HGET', KEYS[4], 'by') or '' }
end

local newVersion = version + 1
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'version', newVersion, 'updated_at', ARGV[8],
  'updated_by', ARGV[3], 'reason', ARGV[5], 'proposal_id', ARGV[6])
redis.call('ZADD', KEYS[6], ARGV[8], ARGV[13])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[10], '*',
  'version', newVersion, 'old', row[2], 'new', ARGV[2], 'actor', ARGV[3], 'actor_kind', ARGV[4],
  'reason', ARGV[5], 'proposal_id', ARGV[6], 'evidence', ARGV[7], 'at', ARGV[8], 'kind', ARGV[12])
appendAudit(KEYS[3], ARGV[11], ARGV[8], ARGV[3], 'knob.' .. ARGV[12], ARGV[13],
  cjson.encode({ version = newVersion, reason = ARGV[5], proposal_id = ARGV[6] }))
local epoch = redis.call('INCR', KEYS[5])
redis.call('PUBLISH', ARGV[9], cjson.encode({ name = ARGV[13], version = newVersion, value = ARGV[2], epoch = epoch }))
return { OK, newVersion, epoch }
