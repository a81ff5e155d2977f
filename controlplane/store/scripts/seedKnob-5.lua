--[[
  Creates a knob row at version 1 with its default value when it does not exist, with one
  history and one audit entry; when it exists, refreshes only its stored declaration and
  returns its stored value (never changed here), so the caller can check it against the
  refreshed declaration and report a value a catalog change left out of the domain.
  Idempotent.

  Input:
    KEYS[1] 'knob', KEYS[2] 'history', KEYS[3] 'audit', KEYS[4] 'epoch', KEYS[5] 'index'
    ARGV[1] name, ARGV[2] service, ARGV[3] type, ARGV[4] declaration (JSON),
    ARGV[5] default value (JSON), ARGV[6] now (ms), ARGV[7] actor,
    ARGV[8] history max length, ARGV[9] audit max length, ARGV[10] change id (names the
    seeded version 1: a re-seed after lost writes is another change than the first seed)

  Output: { 1 } created, { 0, value (JSON) } already there (declaration refreshed)
]]
--@include "includes/audit.lua"

if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'spec', ARGV[4], 'service', ARGV[2], 'type', ARGV[3], 'default', ARGV[5])
  return { 0, redis.call('HGET', KEYS[1], 'value') or 'null' }
end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'service', ARGV[2], 'type', ARGV[3], 'spec', ARGV[4],
  'default', ARGV[5], 'value', ARGV[5], 'version', 1, 'updated_at', ARGV[6], 'updated_by', ARGV[7],
  'reason', 'seeded from the catalog default', 'proposal_id', '', 'pinned', '0', 'pinned_by', '',
  'pin_reason', '', 'change_id', ARGV[10])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*',
  'version', 1, 'old', 'null', 'new', ARGV[5], 'actor', ARGV[7], 'actor_kind', 'system',
  'reason', 'seeded from the catalog default', 'proposal_id', '', 'evidence', '{}', 'at', ARGV[6], 'kind', 'seed')
appendAudit(KEYS[3], ARGV[9], ARGV[6], ARGV[7], 'knob.seed', ARGV[1], cjson.encode({ version = 1 }))
redis.call('INCR', KEYS[4])
return { 1 }
