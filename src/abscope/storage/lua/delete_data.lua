-- Delete every data key of one experiment (not its configuration), atomically.
--
-- KEYS[1]  abscope:{id}:phases, then the event-id buckets that may exist and
--          every per-phase key of the phases listed in ARGV (built by storage/keys.py)
-- ARGV     the phases the caller read from KEYS[1]
--
-- Returns 1 when deleted; 0 (and deletes nothing) when KEYS[1] holds a phase missing from
-- ARGV, i.e. a writer added a phase since the caller read the set: read again and retry.

local expected = {}
for i = 1, #ARGV do
    expected[ARGV[i]] = true
end
for _, phase in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if not expected[phase] then
        return 0
    end
end
redis.call('DEL', unpack(KEYS))
return 1
