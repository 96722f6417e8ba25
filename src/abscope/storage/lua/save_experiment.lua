-- Compare-and-set of one experiment's configuration.
--
-- KEYS[1]  abscope:{config}:experiments (hash: id -> experiment JSON)
-- ARGV[1]  experiment id
-- ARGV[2]  the new version (must be the stored version + 1)
-- ARGV[3]  the new JSON
--
-- Returns 1 when saved, 0 when the experiment does not exist, -1 on a version conflict
-- (then ARGV[2] - 1 is not the stored version).

local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then
    return 0
end
if tonumber(cjson.decode(stored).version) + 1 ~= tonumber(ARGV[2]) then
    return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
