-- End a task: the registry's compare-and-set (as set_fields.lua) and, if it changed the row,
-- the release of every lock the task holds, in one atomic step.
-- KEYS: task:<name>, active, finished, locks, owners, owned:<name>. ARGV: as set_fields.lua.
-- Returns -1 if the compare-and-set lost, else how many locks were released.
if set_fields(KEYS[1], KEYS[2], KEYS[3], ARGV) == 0 then return -1 end
return release_all(KEYS[4], KEYS[5], KEYS[6], ARGV[1])
