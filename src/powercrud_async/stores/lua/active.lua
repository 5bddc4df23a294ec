-- Every active task's row in one round trip.
-- KEYS: active. ARGV: prefix. Returns {name, {field, value, ...}} per active task.
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local row = redis.call('HGETALL', ARGV[1] .. 'task:' .. name)
  if #row > 0 then out[#out + 1] = {name, row} end
end
return out
