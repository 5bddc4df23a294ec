-- Remove a registry row and its name from every index.
-- KEYS: task:<name>, active, finished, finished:due. ARGV: name.
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
return 1
