-- Drop the expired locks of a task that is not queued or running (a reservation nobody
-- launched), atomically: a launch registering the name or renewing its locks wins.
-- KEYS: locks, owners, owned:<task>, task:<task>. ARGV: task. Returns how many were dropped.
local status = redis.call('HGET', KEYS[4], 'status')
if status and ACTIVE[status] then return 0 end
local now = now_ms()
local mine = owned_locks(KEYS[1], KEYS[3], ARGV[1])
local dropped = 0
for j = 1, #mine, 2 do
  if parse(mine[j + 1]) <= now then
    redis.call('HDEL', KEYS[1], mine[j])
    redis.call('SREM', KEYS[3], mine[j])
    dropped = dropped + 1
  end
end
if redis.call('SCARD', KEYS[3]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return dropped
