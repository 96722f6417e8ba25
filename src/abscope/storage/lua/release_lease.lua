-- Give a lease up, only by its holder (another holder's lease is left alone).
--
-- KEYS[1]  abscope:{lease:<name>} (string: the holder, with a server-side expiry)
-- ARGV[1]  holder
--
-- Returns 1 when released, 0 when ARGV[1] did not hold it.

if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
end
return 0
