--[[
  Numbers converted once per call. tonumber(s) costs two strtod calls (Lua 5.1 checks, then
  converts) and tostring(n) a sprintf('%.14g'), more than most Redis commands, and a batch
  repeats the same few values (times, demands, counts, versions, increments) over and over.
  NUM[s] is tonumber(s); STR[n] is the decimal string of the integer n (other numbers as
  tostring does); INT[s] is the integer s when INCRBY would take it and it is below 1e15 (sums
  of such stay exact as doubles), else false.
]]
local NUM = setmetatable({}, { __index = function(t, s)
  if s == nil then return nil end
  local v = tonumber(s)
  if v ~= nil then t[s] = v end
  return v
end })
local STR = setmetatable({}, { __index = function(t, n)
  local s
  if n % 1 == 0 and n > -1e15 and n < 1e15 then s = string.format('%d', n) else s = tostring(n) end
  t[n] = s
  return s
end })
local INT = setmetatable({}, { __index = function(t, s)
  local v = (s == '0' or string.match(s, '^%-?[1-9]%d*$')) and #s <= 15 and tonumber(s) or false
  t[s] = v
  return v
end })
