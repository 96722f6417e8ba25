-- Take or renew a lease: free (absent or expired, which Redis deletes by itself) or held
-- by the same holder already -> the holder holds it for ARGV[2] more milliseconds.
--
-- KEYS[1]  abscope:{lease:<name>} (string: the holder, with a server-side expiry)
-- ARGV[1]  holder, ARGV[2] time to live in milliseconds
--
-- Returns 1 when ARGV[1] holds the lease afterwards, 0 when another holder does.

local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
