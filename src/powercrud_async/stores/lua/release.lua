-- Drop every lock the task holds, its owned: set and its place among the owners.
-- KEYS: locks, owners, owned:<task>. ARGV: task. Returns how many locks were dropped.
return release_all(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
