--[[
  Changes one or more knobs in one atomic step: for every knob, checks its base (version and
  change id) and its pin, and (for automation) the global freeze; only if all pass, writes
  every row, bumps each version, appends one history entry per knob and one audit entry per knob, bumps the
  epoch once per knob and publishes the whole change in one message ({ change, changes: [ {
  name, version, value, epoch } ] }), so a client takes every knob of it before telling anyone. Optionally marks the proposal the change
  came from as live (or rolled_back) in the same step, with its own audit entry. Value-level rules (type, domain, step, cooldown) are
  checked by the caller against the rows at the base versions; the version checks here make
  that sound; the change id too, as a version is written again with another value after a
  write is lost (a failover to a lagging replica), and the caller's checks held against the
  lost value. A promotion is done once per request id: the same call run again (a client
  resending it after a lost reply, or a caller retrying with its idempotency key) answers what
  the first run made, and changes nothing more.

  Input:
    KEYS[1] 'audit'     audit stream
    KEYS[2] 'freeze'    freeze switch (exists = frozen)
    KEYS[3] 'epoch'     counter bumped on every value change
    KEYS[4] 'index'     sorted set name -> updated_at
    KEYS[5] 'proposal'  the proposal row to mark live (it must exist), or any key when
                        there is none
    KEYS[6] 'open'      the index of undecided proposals (the proposal leaves it)
    KEYS[7] 'request'   the request's record: { hash, out = the first run's output } as JSON,
                        kept requestTtlMs
    KEYS[8], KEYS[9]    knob 1: row hash, history stream
    KEYS[10], KEYS[11]  knob 2 ... and so on

    ARGV[1] common (JSON): { actor, actorKind: operator|automation|system, reason, proposalId,
            evidence (JSON text), now (ms), channel, historyMaxLen, auditMaxLen,
            kind: promote|rollback, proposalFrom: [ statuses the proposal may be in ],
            proposalTo: the status it moves to, requestHash (what the request asks for),
            requestTtlMs, changeId (names this change on each row it writes and in its
            messages) }
    ARGV[2] changes (JSON): [ { name, base, baseChange (the change id the caller checked
            against; '' for a row without one), value (JSON text) } ] in KEYS order

  Output:
    { 0, epoch, v1, v2, ... } on success: the last epoch and each knob's new version
    { -1, 0 } the named proposal does not exist, { -1, i } knob i missing, { -2, i, current version } stale (also at the base version
    when its change id differs), { -3, i, pinned by } pinned,
    { -4, 0, frozen by } frozen, { -6, 0, proposal status } the proposal is in another status,
    { -301 } the request id was used for another request
]]
--@include "includes/codes.lua"
--@include "includes/audit.lua"

local c = cjson.decode(ARGV[1])
local changes = cjson.decode(ARGV[2])
local ERR_REQUEST_REUSED = -301

-- First: a repeat must not be checked against the state its first run made.
local done = redis.call('GET', KEYS[7])
if done then
  local rec = cjson.decode(done)
  if rec.hash ~= c.requestHash then return { ERR_REQUEST_REUSED } end
  -- The first run's change id follows its output: the caller remembers the rows as that run
  -- wrote them, not with its own (unused) change id.
  local out = rec.out
  if rec.changeId then out[#out + 1] = rec.changeId end
  return out
end

if c.actorKind == 'automation' and redis.call('EXISTS', KEYS[2]) == 1 then
  return { ERR_FROZEN, 0, redis.call('HGET', KEYS[2], 'by') or '' }
end
-- A named proposal must exist: history and audit would otherwise credit a made-up one.
local hasProposal = c.proposalId ~= ''
if hasProposal and redis.call('EXISTS', KEYS[5]) == 0 then return { ERR_MISSING, 0 } end
local proposalFrom
if hasProposal then
  local status = redis.call('HGET', KEYS[5], 'status')
  proposalFrom = status
  local allowed = false
  for _, s in ipairs(c.proposalFrom) do if s == status then allowed = true end end
  if not allowed then return { ERR_STATE, 0, status } end
end
local olds = {}
for i, ch in ipairs(changes) do
  local rowKey = KEYS[6 + 2 * i]
  if redis.call('EXISTS', rowKey) == 0 then return { ERR_MISSING, i } end
  local row = redis.call('HMGET', rowKey, 'version', 'value', 'pinned', 'pinned_by', 'change_id')
  if tonumber(row[1]) ~= tonumber(ch.base) or (row[5] or '') ~= (ch.baseChange or '') then
    return { ERR_STALE, i, tonumber(row[1]) }
  end
  if row[3] == '1' then return { ERR_PINNED, i, row[4] or '' } end
  olds[i] = row[2]
end

local out = { OK, 0 }
local epoch = 0
local message = {}
for i, ch in ipairs(changes) do
  local rowKey, historyKey = KEYS[6 + 2 * i], KEYS[7 + 2 * i]
  local v = tonumber(ch.base) + 1
  redis.call('HSET', rowKey, 'value', ch.value, 'version', v, 'updated_at', c.now,
    'updated_by', c.actor, 'reason', c.reason, 'proposal_id', c.proposalId, 'change_id', c.changeId)
  redis.call('ZADD', KEYS[4], c.now, ch.name)
  redis.call('XADD', historyKey, 'MAXLEN', '~', c.historyMaxLen, '*',
    'version', v, 'old', olds[i], 'new', ch.value, 'actor', c.actor, 'actor_kind', c.actorKind,
    'reason', c.reason, 'proposal_id', c.proposalId, 'evidence', c.evidence, 'at', c.now, 'kind', c.kind)
  appendAudit(KEYS[1], c.auditMaxLen, c.now, c.actor, 'knob.' .. c.kind, ch.name,
    cjson.encode({ version = v, reason = c.reason, proposal_id = c.proposalId }))
  epoch = redis.call('INCR', KEYS[3])
  message[i] = { name = ch.name, version = v, value = ch.value, epoch = epoch }
  out[#out + 1] = v
end
out[2] = epoch
redis.call('PUBLISH', c.channel, cjson.encode({ change = c.changeId, changes = message }))
if hasProposal then
  redis.call('HSET', KEYS[5], 'status', c.proposalTo, 'updatedAt', c.now, 'reason', c.reason)
  redis.call('HINCRBY', KEYS[5], '_v', 1)
  redis.call('ZREM', KEYS[6], c.proposalId)
  -- The proposal's move is audited like every other move of it (ProposalTable.transition).
  appendAudit(KEYS[1], c.auditMaxLen, c.now, c.actor, 'proposal.' .. c.proposalTo, c.proposalId,
    cjson.encode({ from = proposalFrom, reason = c.reason }))
end
redis.call('SET', KEYS[7], cjson.encode({ hash = c.requestHash, out = out, changeId = c.changeId }),
  'PX', c.requestTtlMs)
return out
