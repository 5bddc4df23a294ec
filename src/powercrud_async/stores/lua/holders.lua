-- The holder of each field that is locked: unexpired, or expired but owned by an active task.
-- KEYS: locks, active. ARGV: fields. Returns field, holder pairs.
local now = now_ms()
local out = {}
for k = 1, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[k])
  if v then
    local expires, _, owner = parse(v)
    if expires > now or redis.call('SISMEMBER', KEYS[2], owner) == 1 then
      out[#out + 1] = ARGV[k]
      out[#out + 1] = owner
    end
  end
end
return out
