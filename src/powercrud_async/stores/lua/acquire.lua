-- Take every lock or none, and optionally insert the registry row in the same step.
-- KEYS: locks, owners, active, finished, task:<registered name>
-- ARGV: prefix, task, ttl_ms, token, reg_name, n_adopt, adopt..., n_reg, reg pairs...,
--       strict (1: only the listed fields may be re-entered), n_reenter, reenter..., fields...
-- The number of keys per SADD is filled in from Python.
local prefix, task, ttl, token, reg_name = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local i = 6
local adopt = {}
local n_adopt = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_adopt do adopt[ARGV[i]] = true; i = i + 1 end
local n_reg = tonumber(ARGV[i]); i = i + 1
local reg_start = i
i = i + n_reg
local strict = ARGV[i] == '1'; i = i + 1
local reenter = {}
local n_reenter = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_reenter do reenter[ARGV[i]] = true; i = i + 1 end
local first = i
if n_reg > 0 and redis.call('EXISTS', KEYS[5]) == 1 then
  -- The same call, retried after a lost reply, finds its own registration: it already won.
  if redis.call('HGET', KEYS[5], '~tok') == token then return {'ok'} end
  return {'dup'}
end
local now = now_ms()
local conflicts = {}
local prev = {}
for k = first, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[k])
  if v then
    local expires, acquired, owner = parse(v)
    if (owner == task and (not strict or reenter[ARGV[k]])) or adopt[owner] then
      prev[k] = {owner, acquired}
    elseif expires <= now and redis.call('SISMEMBER', KEYS[3], owner) == 0 then
      prev[k] = {owner, nil}
    else
      conflicts[#conflicts + 1] = ARGV[k]
      conflicts[#conflicts + 1] = owner
    end
  end
end
if #conflicts > 0 then return {'conflict', conflicts} end
local owned = prefix .. 'owned:' .. task
local expiry = num(now + ttl)
local fresh = expiry .. '|' .. num(now) .. '|' .. task
local touched = {}
local batch = {}
-- Every key gets the new expiry: a lock re-added by its owner is renewed, not left to expire.
for k = first, #ARGV do
  local p = prev[k]
  local field = ARGV[k]
  local value = fresh
  if p then
    if p[1] ~= task then
      redis.call('SREM', prefix .. 'owned:' .. p[1], field)
      touched[p[1]] = true
    end
    if p[2] then value = expiry .. '|' .. p[2] .. '|' .. task end
  end
  redis.call('HSET', KEYS[1], field, value)
  batch[#batch + 1] = field
  if #batch == $LUA_BATCH then
    redis.call('SADD', owned, unpack(batch))
    batch = {}
  end
end
if #batch > 0 then redis.call('SADD', owned, unpack(batch)) end
for owner in pairs(touched) do
  if redis.call('SCARD', prefix .. 'owned:' .. owner) == 0 then redis.call('SREM', KEYS[2], owner) end
end
if first <= #ARGV then redis.call('SADD', KEYS[2], task) end
if n_reg > 0 then
  for j = reg_start, reg_start + n_reg - 1, 2 do
    redis.call('HSET', KEYS[5], ARGV[j], ARGV[j + 1])
  end
  redis.call('HSET', KEYS[5], '~tok', token)
  reindex(KEYS[5], reg_name, KEYS[3], KEYS[4])
end
return {'ok'}
