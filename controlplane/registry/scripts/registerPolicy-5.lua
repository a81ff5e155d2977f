--[[
  Registers a new version of a named policy in one atomic step: assigns the next version from
  the name's counter, writes the row, indexes it and appends the audit entry. Concurrent
  registers of one name get distinct consecutive versions; a refused one writes nothing. A
  register is done once per request id: the same call run again (a client resending it after
  a lost reply, or a caller retrying with its idempotency key) answers the version the first
  run made, and registers nothing more.

  Input:
    KEYS[1] 'versions'  hash: policy name -> latest version; field '*' counts every register
    KEYS[2] 'names'     sorted set: policy name -> registered at
    KEYS[3] 'seq'       the table's index: row id -> its registration number (field seq)
    KEYS[4] 'audit'     the registry's audit stream
    KEYS[5] the request's record: '<version> <seq> <request hash>' of the version this
            request registered, kept requestTtlMs

    ARGV[1] (JSON): { prefix = row key without the id, name, kind, parent (0 = none), now,
            actor, auditMaxLen, requestTtlMs, requestHash (of name, kind and fields), fields = [ f1, v1, ... ] (every field but id,
            version and seq), detail = audit detail (JSON text) }
    The row key is prefix .. name .. '@' .. version: in the same hash-tag family as KEYS
    (built by RegistryKeys.rowPrefix), so the step stays in one cluster slot.

  Output:
    { 0, version, seq, 0 }   registered now
    { 0, version, seq, 1 }   registered by an earlier run of this request
    { -201, parent }         lineage.parent is not a version of this name
    { -202, existing kind }  the name's earlier versions are of another kind
    { -203 }                 the request id was used for another registration
]]
--@include "includes/codes.lua"
--@include "includes/audit.lua"

local a = cjson.decode(ARGV[1])
local done = redis.call('GET', KEYS[5])
if done then
  local version, seq, hash = string.match(done, '^(%d+) (%d+) (%x+)$')
  if hash ~= a.requestHash then return { -203 } end
  return { OK, tonumber(version), tonumber(seq), 1 }
end
local latest = tonumber(redis.call('HGET', KEYS[1], a.name) or '0')
if latest > 0 then
  local kind = redis.call('HGET', a.prefix .. a.name .. '@' .. latest, 'kind')
  if kind and kind ~= a.kind then return { -202, kind } end
end
local parent = tonumber(a.parent)
if parent > 0 and (parent > latest or redis.call('EXISTS', a.prefix .. a.name .. '@' .. parent) == 0) then
  return { -201, parent }
end
local version = redis.call('HINCRBY', KEYS[1], a.name, 1)
local seq = redis.call('HINCRBY', KEYS[1], '*', 1)
local id = a.name .. '@' .. version
redis.call('HSET', a.prefix .. id, '_v', 1, 'id', id, 'version', version, 'seq', seq, unpack(a.fields))
redis.call('ZADD', KEYS[2], a.now, a.name)
redis.call('ZADD', KEYS[3], seq, id)
appendAudit(KEYS[4], a.auditMaxLen, a.now, a.actor, 'policy.register', id, a.detail)
redis.call('SET', KEYS[5], version .. ' ' .. seq .. ' ' .. a.requestHash, 'PX', a.requestTtlMs)
return { OK, version, seq, 0 }
