--[[
  Failure codes returned by every script as { code, detail }. They are mapped to typed
  errors by ONE function in controlplane/store/errors.ts; keep the two lists in step.
]]
local OK = 0
local ERR_MISSING = -1
local ERR_STALE = -2
local ERR_PINNED = -3
local ERR_FROZEN = -4
local ERR_EXISTS = -5
local ERR_STATE = -6
