-- Shared helpers, put before every script that uses them. TIME is the server clock, so every
-- machine agrees on what has expired. The table of active statuses is filled in from Python
-- (``statuses.ACTIVE``, JSON-encoded as registry rows store them).
if redis.replicate_commands then pcall(redis.replicate_commands) end
local ACTIVE = $ACTIVE_STATUSES
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(x) return string.format('%.0f', x) end
local function parse(v)
  local e, a, o = string.match(v, '^(%-?%d+)|(%-?%d+)|(.*)$')
  return tonumber(e), a, o
end
-- The locks ``task`` still holds among those its ``owned:`` set lists (one taken over since is
-- not its own any more), as a flat field, value list.
local function owned_locks(locks_key, owned_key, task)
  local out = {}
  for _, field in ipairs(redis.call('SMEMBERS', owned_key)) do
    local v = redis.call('HGET', locks_key, field)
    if v and string.match(v, '^[^|]*|[^|]*|(.*)$') == task then
      out[#out + 1] = field
      out[#out + 1] = v
    end
  end
  return out
end
-- Put a registry row in the index its status belongs to, and in the set of tasks whose
-- final events are due while they are.
local function reindex(task_key, name, active_key, finished_key)
  local status = redis.call('HGET', task_key, 'status')
  if status and ACTIVE[status] then
    redis.call('SADD', active_key, name)
    redis.call('ZREM', finished_key, name)
  else
    redis.call('SREM', active_key, name)
    local score = tonumber(redis.call('HGET', task_key, '~fts') or '')
      or tonumber(redis.call('HGET', task_key, '~cts') or '') or 0
    redis.call('ZADD', finished_key, score, name)
  end
  if redis.call('HGET', task_key, 'events_due') == 'true' then
    redis.call('SADD', finished_key .. ':due', name)
  else
    redis.call('SREM', finished_key .. ':due', name)
  end
end
-- The compare-and-set of a registry row (see set_fields.lua): 1 if it changed (or a retried
-- call's first try did), else 0.
local function set_fields(task_key, active_key, finished_key, args)
  if redis.call('EXISTS', task_key) == 0 then return 0 end
  local n_from = tonumber(args[4])
  local n_expect = tonumber(args[5 + n_from])
  local ok = true
  if args[2] == '1' then
    local status = redis.call('HGET', task_key, 'status')
    ok = false
    for j = 5, 4 + n_from do
      if status == args[j] then ok = true end
    end
  end
  local e = 6 + n_from
  for j = e, e + 2 * n_expect - 1, 2 do
    if (redis.call('HGET', task_key, args[j]) or 'null') ~= args[j + 1] then ok = false end
  end
  if not ok then
    if redis.call('HGET', task_key, '~ttok') == args[3] then return 1 end
    return 0
  end
  if args[2] == '1' or n_expect > 0 then redis.call('HSET', task_key, '~ttok', args[3]) end
  for j = e + 2 * n_expect, #args, 2 do
    redis.call('HSET', task_key, args[j], args[j + 1])
  end
  reindex(task_key, args[1], active_key, finished_key)
  return 1
end
-- Drop every lock the task holds, its owned: set and its place among the owners; how many.
local function release_all(locks_key, owners_key, owned_key, task)
  local mine = owned_locks(locks_key, owned_key, task)
  for j = 1, #mine, 2 do redis.call('HDEL', locks_key, mine[j]) end
  redis.call('DEL', owned_key)
  redis.call('SREM', owners_key, task)
  return #mine / 2
end
