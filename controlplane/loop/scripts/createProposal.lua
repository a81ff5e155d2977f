--[[
  Writes a new proposal row in one atomic step, refusing it when any knob it changes has
  moved past the proposal's base version, is pinned, or (for automation) when automation is
  frozen. A learner killed before this script runs leaves nothing; after it, a whole row.

  Input:
    KEYS[1] 'proposal'  the new proposal row (hash)
    KEYS[2] 'created'   index: proposal id -> created at
    KEYS[3] 'open'      index: ids of proposals not yet decided -> created at
    KEYS[4] 'audit'     audit stream
    KEYS[5] 'freeze'    freeze switch
    KEYS[6...]          the row of each knob the proposal changes, in ARGV order

    ARGV[1] the proposal (JSON): { id, actorKind, now, auditMaxLen, learner,
            bases = [ version of each knob ], fields = [ f1, v1, f2, v2, ... ] }

  Output:
    { 0 } created; { -5 } id exists; { -4, frozen by } frozen;
    { -1, i } knob i missing; { -2, i, current version } stale; { -3, i, pinned by } pinned
]]
--@include "includes/codes.lua"
--@include "includes/audit.lua"

local p = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then return { ERR_EXISTS } end
if p.actorKind == 'automation' and redis.call('EXISTS', KEYS[5]) == 1 then
  return { ERR_FROZEN, redis.call('HGET', KEYS[5], 'by') or '' }
end
for i, base in ipairs(p.bases) do
  local row = KEYS[5 + i]
  if redis.call('EXISTS', row) == 0 then return { ERR_MISSING, i } end
  local v = redis.call('HMGET', row, 'version', 'pinned', 'pinned_by')
  if tonumber(v[1]) ~= tonumber(base) then return { ERR_STALE, i, tonumber(v[1]) } end
  if v[2] == '1' then return { ERR_PINNED, i, v[3] or '' } end
end
redis.call('HSET', KEYS[1], '_v', 1, unpack(p.fields))
redis.call('ZADD', KEYS[2], p.now, p.id)
redis.call('ZADD', KEYS[3], p.now, p.id)
appendAudit(KEYS[4], p.auditMaxLen, p.now, p.learner, 'proposal.create', p.id, cjson.encode({ knobs = #p.bases }))
return { OK }
