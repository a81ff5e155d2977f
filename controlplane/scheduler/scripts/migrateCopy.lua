--[[
  Live placement migration, step 2 on the NEW shard: writes copies of a moving tenant's rows
  (task rows with their index entries, DAG edges, idempotency keys, dead-letter rows, job
  rows). A task row that exists already is skipped, so a copy step repeated after a crash
  changes nothing it wrote before. Frozen tasks ('moving') stay frozen here, out of the
  runnable and delayed indexes, and are staged (KEYS[7]: id -> '<index> <score>') until the
  whole tenant is copied (migrateThaw.lua): a task that ran on this shard before its children
  were copied would update child rows that are not here yet.
  A tombstone (state 'moved') is not a row: it is what an earlier move of the tenant OUT of
  this shard left (a move back within the tombstones' 24 h). It is replaced: deleted, with
  anything of the task still kept beside it here (DAG edges, dead-letter row; its idempotency
  key is written again below), then the row is copied as if it were absent. Job rows leave
  no tombstone (the clean step deletes them), so an existing one is a live one: after the
  switch (a late arrival swept over, ARGV[7] = '1'), each task written here counts in it, as
  its submit counted it in the old shard's row (which the clean step deletes); before, the old
  shard's row, copied whole, counts every task of the job there.
  A task of a dead task's cascade still under way there (its entry taken from the old shard's
  cascade list by the freeze) is staged too ('c|<id>'), and the thaw hands it to this shard's
  cascade list: the cascade goes on here, once every row it may reach is here.

  A row copied here after its parent's row was (a late child submitted on the old shard naming
  a parent already copied, frozen there) is missing from that parent's children set here, which
  was copied before the child arrived: each written row's `parents` are read here, and for each
  parent live here (not a tombstone) that lacks the edge it is added (SADD, has_children), as
  submit would. A parent that ended here after the thaw (ARGV[8]; it ran here, so the child's
  row on the old shard, which counted it, never saw it end) is counted down as its settle would
  have: the child's `pending` drops and, at 0, it is staged runnable (the thaw lets it run). A
  parent that failed here after the thaw is staged as a cascade entry ('c|<id>'): the thaw hands
  it to this shard's cascade list and the reaper marks the child upstream_failed. A parent that
  ended before the thaw was copied ended: the child's row already has it right.

  Input:
    KEYS[1] runnable  KEYS[2] delayed  KEYS[3] done  KEYS[4] dead  KEYS[5] idem  KEYS[6] doorbell
    KEYS[7] the tenant's staged tasks on this shard
    ARGV[1..4] prefixes: task row, children set, job row, dead-letter row
    ARGV[5]    JSON list of { id, row = {field, value, ...}, index = 'r'|'d'|'done'|'dead'|'',
               score, children = {...}, dead = {field, value, ...} or absent, cascade = bool,
               job = its job's id ('' for a task that is its own job), ended = bool,
               failed = bool (dead or upstream_failed), est = estimate (ms, 0 = none) }
    ARGV[6]    JSON list of { id, row = {field, value, ...}, ttlMs (the row's time to live on the
               old shard; -1 none) } job rows
    ARGV[7]    '1' when the copy moves late arrivals (after the switch), else '0'
    ARGV[8]    when the tenant's copies here were thawed (ms; 0 = not yet)
    ARGV[9]    now (ms)
  Output: { tasks written, job rows written }
]]
local P_TASK, P_CHILDREN, P_JOB, P_DEAD = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local INDEX = { r = KEYS[1], d = KEYS[2], done = KEYS[3], dead = KEYS[4] }
local STATE = { r = 'runnable', d = 'delayed' }
local written, jobs = 0, 0
local late = ARGV[7] == '1'
local wrote = {} -- written rows that name parents
-- Job rows first: one copied whole now counts the tasks below already.
local copiedNow = {}
for _, j in ipairs(cjson.decode(ARGV[6])) do
  if redis.call('EXISTS', P_JOB .. j.id) == 0 and #j.row > 0 then
    redis.call('HSET', P_JOB .. j.id, unpack(j.row))
    if j.ttlMs and j.ttlMs > 0 then redis.call('PEXPIRE', P_JOB .. j.id, j.ttlMs) end
    copiedNow[j.id] = true
    jobs = jobs + 1
  end
end
local function countInJob(t)
  local k = P_JOB .. t.job
  if not late or t.job == '' or copiedNow[t.job] or redis.call('EXISTS', k) == 0 then return end
  redis.call('HINCRBY', k, 'total', 1)
  if t.failed then redis.call('HINCRBY', k, 'dead', 1) end
  if not t.ended then
    redis.call('HINCRBY', k, 'remaining', 1)
    if t.est > 0 then redis.call('HINCRBYFLOAT', k, 'remaining_work_ms', t.est) end
    -- A job that had finished and gets a task is open again (as a submit does).
    redis.call('HDEL', k, 'finished_at')
    redis.call('PERSIST', k)
    redis.call('PERSIST', k .. '#tasks')
  end
  redis.call('HINCRBY', k, '_v', 1)
end
for _, t in ipairs(cjson.decode(ARGV[5])) do
  local key = P_TASK .. t.id
  local state = redis.call('HGET', key, 'state')
  if state == 'moved' then
    -- Also drops the tombstone's expiry: the copied row must not expire with it.
    redis.call('DEL', key, P_CHILDREN .. t.id, P_DEAD .. t.id)
    for _, index in pairs(INDEX) do redis.call('ZREM', index, t.id) end
    state = false
  end
  if not state and redis.call('EXISTS', key) == 0 then
    local row = t.row
    local idem = nil
    for i = 1, #row, 2 do
      if row[i] == 'idempotency_key' then idem = row[i + 1] end
      if row[i] == 'parents' then t.parents = true end
    end
    redis.call('HSET', key, unpack(row))
    if STATE[t.index] then
      -- Frozen on the old shard: frozen here too, until the thaw.
      redis.call('HSET', key, 'state', 'moving')
      redis.call('HSET', KEYS[7], t.id, t.index .. ' ' .. t.score)
    elseif INDEX[t.index] then
      redis.call('ZADD', INDEX[t.index], t.score, t.id)
    end
    if #t.children > 0 then redis.call('SADD', P_CHILDREN .. t.id, unpack(t.children)) end
    if t.dead and #t.dead > 0 then redis.call('HSET', P_DEAD .. t.id, unpack(t.dead)) end
    if idem then redis.call('HSET', KEYS[5], idem, t.id) end
    countInJob(t)
    -- Its job's set of tasks here (includes/shard.lua JOB_TASKS), which a job's cancel reads;
    -- only beside a job row (one expired with its finished job has none: nor has its set).
    if t.job ~= '' and redis.call('EXISTS', P_JOB .. t.job) == 1 then
      redis.call('SADD', P_JOB .. t.job .. '#tasks', t.id)
      -- As long as its finished job's row (includes/shard.lua jobTaskEnded).
      local ttl = redis.call('PTTL', P_JOB .. t.job)
      if ttl > 0 then redis.call('PEXPIRE', P_JOB .. t.job .. '#tasks', ttl) end
    end
    written = written + 1
    if t.parents then wrote[#wrote + 1] = t.id end
  end
  if t.cascade then redis.call('HSET', KEYS[7], 'c|' .. t.id, 'c') end
end
-- Edges from the written rows' parents (see the header); after every row of the batch is here.
local thawedAt = tonumber(ARGV[8])
local OPEN = { pending = true, moving = true, runnable = true, delayed = true, leased = true }
for _, id in ipairs(wrote) do
  local key = P_TASK .. id
  local parents = redis.call('HGET', key, 'parents')
  for p in string.gmatch(parents or '', '[^,]+') do
    local pr = redis.call('HMGET', P_TASK .. p, 'state', 'attrs', 'finished_at')
    local ps = pr[1]
    if ps and pr[2] and redis.call('SISMEMBER', P_CHILDREN .. p, id) == 0 then
      local after = thawedAt > 0 and tonumber(pr[3] or '0') >= thawedAt
      if OPEN[ps] then
        redis.call('SADD', P_CHILDREN .. p, id)
        redis.call('HSET', P_TASK .. p, 'has_children', 1)
      elseif ps == 'done' and after then
        if redis.call('HINCRBY', key, 'pending', -1) <= 0
          and redis.call('HGET', key, 'state') == 'pending' then
          redis.call('HSET', key, 'state', 'moving', 'ready_at', ARGV[9])
          redis.call('HSET', KEYS[7], id, 'r ' .. ARGV[9])
        end
      elseif (ps == 'dead' or ps == 'upstream_failed' or ps == 'cancelled') and after then
        redis.call('SADD', P_CHILDREN .. p, id)
        redis.call('HSET', KEYS[7], 'c|' .. p, 'c')
      end
    end
  end
end
return { written, jobs }
