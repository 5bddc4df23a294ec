-- The compare-and-set of the registry: the row changes only from a status it is seen in, and
-- only while each expected field still holds the value that was read (the attempt, the last
-- heartbeat). The token makes a retry of a call whose reply was lost report the success it
-- had, not a lost race.
-- KEYS: task:<name>, active, finished.
-- ARGV: name, check (0/1), token, n_from, from..., n_expect, expected field/value pairs..., pairs...
return set_fields(KEYS[1], KEYS[2], KEYS[3], ARGV)
