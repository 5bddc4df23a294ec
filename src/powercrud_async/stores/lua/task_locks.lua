-- KEYS: locks, owned:<task>. ARGV: task. Returns field, value pairs of the task's locks.
return owned_locks(KEYS[1], KEYS[2], ARGV[1])
