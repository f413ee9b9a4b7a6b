-- vigie's cluster-wide rate limit: the GCRA of the local limiter (governor's), run atomically
-- in Redis on Redis's clock, so the instances' clocks do not matter.
--
-- KEYS[1]  the client's key in its zone: {prefix}limit:{zone}:{client}
-- ARGV[1]  emission interval T, microseconds (one request per T at the sustained rate)
-- ARGV[2]  burst b (requests above the rate)
--
-- The key holds the client's theoretical arrival time (TAT, microseconds on Redis's clock) and
-- expires when the bucket is full again, so idle clients leave nothing behind.
-- Returns {1, burst capacity left} when admitted (the caller turns it into pass or delay, as
-- it does for the local limiter), {0, microseconds until a request would be admitted}
-- when refused (nothing is written then).
redis.replicate_commands()
local t = tonumber(ARGV[1])
local tau = t * tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local earliest = tat - tau
if now < earliest then
  return {0, earliest - now}
end
local nxt = math.max(tat, now) + t
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000))
local left = math.floor(math.min(now + tau + t - nxt, tau + t) / t)
return {1, left}
