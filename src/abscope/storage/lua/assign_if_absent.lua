-- Sticky assignment: store a user's variant unless one is stored; return the stored one.
--
-- KEYS[1]  abscope:{id}:p<p>:assignments (hash: user -> variant)
-- KEYS[2]  abscope:{id}:phases (set of phases with data, for deletion)
-- ARGV[1]  user, ARGV[2] variant, ARGV[3] phase

if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[3])
    return ARGV[2]
end
return redis.call('HGET', KEYS[1], ARGV[1])
