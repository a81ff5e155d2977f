--[[
  Files under a directory, optionally larger than a size and modified within a window, answered
  from the indexes. Three candidate ranges, each counted in O(log n): the directory's prefix in
  the global path index (ZLEXCOUNT), sizes above the bound in the global size index (ZCOUNT),
  and the window in the directory's own subtree mtime index (ZCOUNT; files under the directory
  AND in the window). The planner scans the smallest by rank and checks the other predicates
  with ZSCORE (O(1) each): O(log n + k) for the k candidates of the most selective range, never
  a walk of the tree.

  Input: KEYS[1] volume row; ARGV[1..9] the layout of includes/fs.lua
    ARGV[10] directory, ARGV[11] min size in bytes, exclusive ('' = any)
    ARGV[12] mtime from, ms inclusive ('' = any), ARGV[13] mtime to, ms inclusive ('' = any)
    ARGV[14] most results to return, ARGV[15] most candidates to examine in this call
    ARGV[16] plan to continue ('' = let the planner choose), ARGV[17] where the previous call
             stopped in that plan's index: '<score>\t<path>' of the last candidate it examined
             ('' = from the start). A position, not a rank: files written, created or removed
             between calls do not make the next page skip or repeat the others.
  Permissions: x on every directory passed and r and x on the directory; a file is listed only
    when the caller also has r and x on every directory between it and the query's directory
    (what find(1) needs to reach it). Root sees every file.
  Output: { 0, plan ('path' | 'size' | 'mtime'), candidates in the plan, cursor ('' = done;
            else '<score>\t<path>' to pass back), path, size, mtime, ... }, or { code, path, detail }
]]
--@include "includes/fs.lua"

local PAGE = 512

-- A score as text, exactly: `..` writes numbers with 14 significant digits, which moves a
-- bound such as 1e15 + 4 (an mtime Redis keeps exactly) and so the ranks counted from it.
local function exact(x)
  if type(x) ~= 'number' then return x end
  if x == math.floor(x) and math.abs(x) < 2 ^ 53 then return string.format('%d', x) end
  return string.format('%.17g', x)
end

return run(function()
  local dir = ARGV[10]
  local minSize, from, to = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
  local limit, budget, plan = tonumber(ARGV[14]), tonumber(ARGV[15]), ARGV[16]
  local afterScore, afterPath = string.match(ARGV[17], '^([^\t]*)\t(.*)$')
  afterScore = tonumber(afterScore)
  local _, base = lookup(dir)
  if not base then fail(ERR_NOENT, dir) end
  if base.t ~= 'd' then fail(ERR_NOTDIR, dir) end
  need(base, PERM_R + PERM_X, dir)
  local prefix = dirPrefix(dir)
  local lexLo, lexHi = '[' .. prefix, '(' .. string.sub(prefix, 1, -2) .. '0' -- '0' follows '/'
  local sFrom, sTo = '-inf', '+inf'
  if from then sFrom = from end
  if to then sTo = to end

  -- Each plan: its index, the rank of its first candidate and how many there are.
  local mtimes = dirMtimeKey(base.ino) -- every file below the directory, by mtime
  local plans = {
    path = { key = IDX_PATH, start = redis.call('ZLEXCOUNT', IDX_PATH, '-', '(' .. prefix),
             n = redis.call('ZLEXCOUNT', IDX_PATH, lexLo, lexHi) },
  }
  if minSize then
    plans.size = { key = IDX_SIZE, start = redis.call('ZCOUNT', IDX_SIZE, '-inf', minSize),
                   n = redis.call('ZCOUNT', IDX_SIZE, '(' .. exact(minSize), '+inf') }
  end
  if from or to then
    plans.mtime = { key = mtimes, start = redis.call('ZCOUNT', mtimes, '-inf', '(' .. exact(sFrom)),
                    n = redis.call('ZCOUNT', mtimes, sFrom, sTo) }
  end
  if plan == '' or not plans[plan] then
    plan = 'path'
    for name, p in pairs(plans) do if p.n < plans[plan].n then plan = name end end
    afterScore = nil
  end
  local chosen = plans[plan]

  -- Byte order, as sorted sets order members (Lua's own < follows the locale).
  local function bytesLE(a, b)
    for i = 1, math.min(#a, #b) do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then return x < y end
    end
    return #a <= #b
  end
  -- The rank of the first entry after (afterScore, afterPath) in the index's order (score,
  -- then path), whether or not that entry is still there or has moved since.
  local function resumeRank()
    if plan == 'path' then return redis.call('ZLEXCOUNT', IDX_PATH, '-', '[' .. afterPath) end
    local key = chosen.key
    if tonumber(redis.call('ZSCORE', key, afterPath)) == afterScore then
      return redis.call('ZRANK', key, afterPath) + 1
    end
    -- Gone or moved: binary search among the entries of that score (ordered by path).
    local lo = redis.call('ZCOUNT', key, '-inf', '(' .. exact(afterScore))
    local hi = lo + redis.call('ZCOUNT', key, afterScore, afterScore)
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if bytesLE(redis.call('ZRANGE', key, mid, mid)[1], afterPath) then
        lo = mid + 1
      else
        hi = mid
      end
    end
    return lo
  end
  local offset = 0
  if afterScore then offset = math.max(0, resumeRank() - chosen.start) end

  local seen = {} -- directory path -> its node, or false when the caller may not list it
  local function visible(path)
    if CALLER_UID == 0 then return true end
    local node, at = base, dir
    for name in string.gmatch(string.sub(path, #prefix + 1), '([^/]+)/') do
      at = dirPrefix(at) .. name
      local known = seen[at]
      if known == nil then
        local child = redis.call('HGET', direntKey(node.ino), name)
        local n = child and loadInode(child)
        known = (n and n.t == 'd' and permits(n, PERM_R + PERM_X)) and n or false
        seen[at] = known
      end
      if not known then return false end
      node = known
    end
    return true
  end

  local out = { OK, plan, chosen.n, '' }
  local found, examined = 0, 0
  local lastScore, lastPath = nil, nil -- the last candidate examined
  -- Where this call stopped, as the next call takes it back.
  local function cursor()
    if lastPath == nil then return ARGV[17] end
    return lastScore .. '\t' .. lastPath
  end
  while offset < chosen.n do
    if found >= limit or examined >= budget then
      out[4] = cursor()
      break
    end
    local lo = chosen.start + offset
    local hi = lo + math.min(PAGE, chosen.n - offset, budget - examined) - 1
    local page = redis.call('ZRANGE', chosen.key, lo, hi, 'WITHSCORES')
    for i = 1, #page, 2 do
      offset = offset + 1
      examined = examined + 1
      local path, score = page[i], tonumber(page[i + 1])
      lastScore, lastPath = page[i + 1], path
      if string.sub(path, 1, #prefix) == prefix then
        local size = score
        if plan ~= 'size' then size = tonumber(redis.call('ZSCORE', IDX_SIZE, path)) end
        if not minSize or size > minSize then
          local mtime = score
          if plan ~= 'mtime' then mtime = tonumber(redis.call('ZSCORE', mtimes, path)) end
          if (not from or mtime >= from) and (not to or mtime <= to) and visible(path) then
            out[#out + 1] = path
            out[#out + 1] = size
            out[#out + 1] = mtime
            found = found + 1
            if found >= limit then break end
          end
        end
      end
    end
  end
  if found >= limit and offset < chosen.n then out[4] = cursor() end
  return out
end)
