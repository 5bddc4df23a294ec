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
