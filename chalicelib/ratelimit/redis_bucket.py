"""The Redis token bucket: one atomic Lua script, so every Lambda instance shares one limit.

The script reads the Redis server's clock (TIME), never the caller's, so instances whose clocks are
skewed still agree on how many tokens have refilled. Each bucket is one hash (tokens, last refill time)
that expires once it would have refilled completely anyway: an idle bucket costs no memory.
"""
from __future__ import annotations

import functools
import threading

import redis
from hiredis import pack_command
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from chalicelib.ratelimit.decision import Decision, check_request

# KEYS[1]: the bucket, a hash {tokens, ts (server time, microseconds)}.
# ARGV: refill_rate (tokens/s), capacity, n (0 = peek: report, change nothing).
# Returns one string "<allowed 0|1> <tokens left> <server time, us>": a single bulk reply is the
# cheapest for the client to parse, and Redis would truncate Lua numbers in a reply to integers.
TOKEN_BUCKET_LUA = """
local rate, capacity, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, last = tonumber(state[1]) or capacity, tonumber(state[2]) or now
if now < last then
  -- The clock went backwards (failover to a server behind this one): refill from now on, rather
  -- than not at all until the clock catches up. Rare, so the extra write costs nothing in practice.
  last = now
  redis.call('HSET', KEYS[1], 'ts', now)
end
-- Capped even with no time elapsed: the capacity may just have been lowered.
tokens = math.min(capacity, tokens + (now - last) * rate / 1000000)
if n == 0 or tokens < n then
  -- A peek or a denial changes nothing: the stored state already implies today's count.
  return string.format('0 %.17g %d', tokens, now)
end
tokens = tokens - n
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return string.format('1 %.17g %d', tokens, now)
"""


@functools.lru_cache(maxsize=8)
def _token_bucket_script(client: redis.Redis) -> Script:
    # register_script computes the SHA locally, once per client: no round trip until the first decision.
    return client.register_script(TOKEN_BUCKET_LUA)


class _DecisionLine:
    """One Redis connection per client kept for the common decision, outside the connection pool.

    Taking a pooled connection costs a lock, bookkeeping and a readiness poll of the socket on every
    call, about as much client time as Redis spends running the script (docs/benchmarks.md). A Lambda
    instance serves one request at a time, so it always finds the line free; where threads share a
    client (`chalice local`), a caller that finds it busy takes the pooled path instead of waiting.
    The connection is redis-py's own (same URL, auth, database, timeouts and reply parser), used only
    through its public methods. The read blocks for the reply: polling for it first (tried, issue 15)
    was slower under a Lambda-like CPU quota (docs/benchmarks.md).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._connection = client.connection_pool.make_connection()
        self._lock = threading.Lock()

    def call(self, packed: bytes) -> str | bytes | None:
        """The reply to `packed`, or None when the line is busy or broken (the caller goes the ordinary
        way). NoScriptError propagates: the caller reloads the script."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._connection.send_packed_command([packed])
            return self._connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._connection.disconnect()  # reconnects on the next call
            return None
        finally:
            self._lock.release()


@functools.lru_cache(maxsize=8)
def _decision_line(client: redis.Redis) -> _DecisionLine:
    return _DecisionLine(client)


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
        self._line = _decision_line(client)
        # Encoded once: every decision sends the same arguments.
        self._rate_arg, self._capacity_arg = repr(self.refill_rate), str(self.capacity)
        self._take_one = pack_command(("EVALSHA", self._script.sha, "1", key, self._rate_arg, self._capacity_arg, "1"))

    def allow(self, n: int = 1) -> Decision:
        """Take `n` tokens if they are there. Raises ValueError when `n` exceeds the capacity, and
        redis.RedisError when Redis cannot be reached (the manager applies the fail-open/closed policy)."""
        check_request(n, self.capacity)
        allowed, tokens, at = self._run(n)
        if allowed == "1":
            return Decision(True, float(tokens), 0.0, self.capacity, at=int(at) / 1e6)
        left = float(tokens)
        return Decision(False, left, (n - left) / self.refill_rate, self.capacity, at=int(at) / 1e6)

    def available(self) -> float:
        """Tokens available now, without taking any."""
        return float(self._run(0)[1])

    def _run(self, n: int) -> list[str]:
        reply = self._take_one_prepacked() if n == 1 else None
        if reply is None:
            try:
                reply = self._client.evalsha(self._script.sha, 1, self.key, self._rate_arg, self._capacity_arg, n)
            except NoScriptError:
                # The server lost its scripts (restart, failover, SCRIPT FLUSH): load the source again.
                self._client.script_load(self._script.script)
                reply = self._client.evalsha(self._script.sha, 1, self.key, self._rate_arg, self._capacity_arg, n)
        return (reply.decode() if isinstance(reply, bytes) else reply).split(" ")

    def _take_one_prepacked(self) -> str | bytes | None:
        """The common decision (n=1): a command encoded once per bucket, sent on the client's decision line.

        redis-py's generic command path (argument encoding, pool, retry and instrumentation wrappers)
        costs more client time than Redis spends running the script; skipping it brings a decision
        close to a bare round trip (docs/benchmarks.md). Anything unusual (a busy or broken line,
        NOSCRIPT) returns None, and the caller takes the ordinary path with its retries and script reload.
        """
        try:
            return self._line.call(self._take_one)
        except NoScriptError:
            self._client.script_load(self._script.script)
            return None
