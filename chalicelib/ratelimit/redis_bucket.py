"""The Redis token bucket: one atomic Lua script, so every Lambda instance shares one limit.

The script reads the Redis server's clock (TIME), never the caller's, so instances whose clocks are
skewed still agree on how many tokens have refilled. Each bucket is one hash (tokens, last refill time)
that expires once it would have refilled completely anyway: an idle bucket costs no memory.
"""
from __future__ import annotations

import functools

import redis
from redis.commands.core import Script

from chalicelib.ratelimit.decision import Decision, check_request

# KEYS[1]: the bucket. ARGV: refill_rate (tokens/s), capacity, n (0 = peek: report, change nothing).
# Returns {allowed, tokens left, seconds until n tokens, server time}; numbers go back as strings
# because Redis truncates Lua numbers to integers in replies.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local at = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = capacity
  last = now
end
local elapsed = now - last
if elapsed < 0 then elapsed = 0 end
tokens = math.min(capacity, tokens + elapsed * rate)
if n == 0 then
  return {1, tostring(tokens), '0', at}
end
if tokens < n then
  -- A denial changes nothing: the stored state already implies today's count.
  return {0, tostring(tokens), tostring((n - tokens) / rate), at}
end
tokens = tokens - n
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {1, tostring(tokens), '0', at}
"""


@functools.lru_cache(maxsize=8)
def _token_bucket_script(client: redis.Redis) -> Script:
    # register_script computes the SHA locally; the Script object then calls EVALSHA and reloads the
    # source by itself on NOSCRIPT (after a Redis restart or SCRIPT FLUSH).
    return client.register_script(TOKEN_BUCKET_LUA)


def bucket_key(name: str, scope: str) -> str:
    """The Redis key holding a bucket's state, e.g. `limiter:jobs_create:user:alice`."""
    return f"limiter:{name}:{scope}"


class RedisTokenBucket:
    """A token bucket whose state lives in Redis; one round trip (EVALSHA) per decision."""

    def __init__(self, client: redis.Redis, key: str, refill_rate: float, capacity: int) -> None:
        if refill_rate <= 0:
            raise ValueError("refill_rate must be positive")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.key = key
        self.refill_rate = float(refill_rate)
        self.capacity = int(capacity)
        self._script = _token_bucket_script(client)
        self._client = client

    def allow(self, n: int = 1) -> Decision:
        """Take `n` tokens if they are there. Raises ValueError when `n` exceeds the capacity, and
        redis.RedisError when Redis cannot be reached (the manager applies the fail-open/closed policy)."""
        check_request(n, self.capacity)
        allowed, tokens, retry, at = self._script(
            keys=[self.key], args=[self.refill_rate, self.capacity, n], client=self._client
        )
        return Decision(bool(int(allowed)), float(tokens), float(retry), self.capacity, at=float(at))

    def available(self) -> float:
        """Tokens available now, without taking any."""
        _, tokens, _, _ = self._script(keys=[self.key], args=[self.refill_rate, self.capacity, 0], client=self._client)
        return float(tokens)
