-- Drop every lock the task holds, its owned: set and its place among the owners.
-- KEYS: locks, owners, owned:<task>. ARGV: task. Returns how many locks were dropped.
local mine = owned_locks(KEYS[1], KEYS[3], ARGV[1])
for j = 1, #mine, 2 do redis.call('HDEL', KEYS[1], mine[j]) end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
return #mine / 2
