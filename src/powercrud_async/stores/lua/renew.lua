-- Push the expiry of every lock the task holds ttl_ms past now, keeping when it was acquired.
-- KEYS: locks, owned:<task>. ARGV: task, ttl_ms. Returns how many locks were renewed.
local expiry = num(now_ms() + tonumber(ARGV[2]))
local mine = owned_locks(KEYS[1], KEYS[2], ARGV[1])
for j = 1, #mine, 2 do
  local _, acquired = parse(mine[j + 1])
  redis.call('HSET', KEYS[1], mine[j], expiry .. '|' .. acquired .. '|' .. ARGV[1])
end
return #mine / 2
