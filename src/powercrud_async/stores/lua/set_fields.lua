-- The compare-and-set of the registry: the row changes only from a status it is seen in, and
-- only while each expected field still holds the value that was read (the attempt, the last
-- heartbeat). The token makes a retry of a call whose reply was lost report the success it
-- had, not a lost race.
-- KEYS: task:<name>, active, finished.
-- ARGV: name, check (0/1), token, n_from, from..., n_expect, expected field/value pairs..., pairs...
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n_from = tonumber(ARGV[4])
local n_expect = tonumber(ARGV[5 + n_from])
local ok = true
if ARGV[2] == '1' then
  local status = redis.call('HGET', KEYS[1], 'status')
  ok = false
  for j = 5, 4 + n_from do
    if status == ARGV[j] then ok = true end
  end
end
local e = 6 + n_from
for j = e, e + 2 * n_expect - 1, 2 do
  if (redis.call('HGET', KEYS[1], ARGV[j]) or 'null') ~= ARGV[j + 1] then ok = false end
end
if not ok then
  if redis.call('HGET', KEYS[1], '~ttok') == ARGV[3] then return 1 end
  return 0
end
if ARGV[2] == '1' or n_expect > 0 then redis.call('HSET', KEYS[1], '~ttok', ARGV[3]) end
for j = e + 2 * n_expect, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1])
end
reindex(KEYS[1], ARGV[1], KEYS[2], KEYS[3])
return 1
