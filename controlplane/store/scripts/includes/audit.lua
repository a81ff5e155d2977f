--[[
  Appends one entry to an audit stream, bounded to about `maxLen` entries.
  Fields: at, actor, action, target, outcome, detail (JSON).
]]
local function appendAudit(auditKey, maxLen, at, actor, action, target, detail)
  redis.call('XADD', auditKey, 'MAXLEN', '~', maxLen, '*',
    'at', at, 'actor', actor, 'action', action, 'target', target, 'outcome', 'ok', 'detail', detail)
end
