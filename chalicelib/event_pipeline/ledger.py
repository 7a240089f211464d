"""Idempotency for at-least-once delivery: which events were already applied.

One Redis key per event, `events:seen:<event key>`, set NX: `p` while an invocation applies it (a lease of at
most 15 s, so a crashed invocation does not hold it for long: its retry waits for the lease to end), `d` once applied
(kept `event_dedup_ttl_seconds`, by default 7 days, Kafka's default retention: a replay within it changes
nothing). The event key is the event's own `id` when it has one, else `<topic>:<partition>:<offset>:<timestamp>`.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

PREFIX = "events:seen:"
IN_PROGRESS = "p"
DONE = "d"

# Many keys in one command each (issue 16): the client packs and parses one command instead of one per event.
_CLAIM = """
local won = {}
for i, key in ipairs(KEYS) do
  won[i] = redis.call('SET', key, ARGV[1], 'NX', 'EX', ARGV[2]) and 1 or 0
end
return won
"""

_DONE = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
return 1
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


class EventsInFlight(Exception):
    """Another invocation is applying some of these events right now: retry the batch later."""


class EventLedger:
    def __init__(self, redis: Any, done_ttl_seconds: int) -> None:
        self.redis = redis
        self.done_ttl = done_ttl_seconds
        self._release = redis.register_script(_RELEASE)
        self._claim = redis.register_script(_CLAIM)
        self._done = redis.register_script(_DONE)

    def claim(self, keys: Sequence[str], lease_seconds: int, wait_seconds: float = 0.0) -> list[bool]:
        """Claim every key (one command): True where this invocation must apply the event,
        False where it was already applied. A key still claimed by another invocation (`p`: a crashed one
        whose lease has not run out, or a rare concurrent delivery) is waited for while its lease ends
        within `wait_seconds`; otherwise EventsInFlight is raised, having released this call's claims."""
        # A key twice in one batch (the same event id at two offsets): the first occurrence claims it.
        first: dict[str, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        won: dict[str, bool] = {}
        todo = list(first)
        deadline = time.monotonic() + wait_seconds
        while todo:
            claimed = self._claim(keys=[PREFIX + key for key in todo], args=[IN_PROGRESS, max(1, lease_seconds)])
            won.update(zip(todo, (bool(ok) for ok in claimed)))
            others = [key for key in todo if not won[key]]
            if not others:
                break
            pipe = self.redis.pipeline(transaction=False)
            for key in others:
                pipe.get(PREFIX + key)
                pipe.pttl(PREFIX + key)
            replies = pipe.execute()
            busy = {key: ttl for key, state, ttl in zip(others, replies[0::2], replies[1::2]) if state != DONE}
            if not busy:
                break
            # pttl -2: gone meanwhile (claim again now); -1: no expiry (never ours to wait for).
            longest = max(ttl for ttl in busy.values()) / 1000
            if min(busy.values()) == -1 or time.monotonic() + longest > deadline:
                self.release([key for key, ok in won.items() if ok])
                example = next(iter(busy))
                raise EventsInFlight(f"{len(busy)} event(s) being applied elsewhere, e.g. {example}")
            time.sleep(max(0.0, longest) + 0.05)
            todo = list(busy)
        return [won[key] and first[key] == index for index, key in enumerate(keys)]

    def done(self, keys: Sequence[str], pipe: Any = None) -> None:
        """Mark applied, in one command (on `pipe` if given, to land atomically with a Redis-side effect)."""
        if keys:
            self._done(keys=[PREFIX + key for key in keys], args=[DONE, self.done_ttl], client=pipe or self.redis)

    def marks(self, keys: Sequence[str]) -> tuple[list[str], list[Any]]:
        """(Redis keys, [value, ttl]) that mark `keys` applied, for a script that marks them in the same
        atomic step as its own effect (the job read models)."""
        return [PREFIX + key for key in keys], [DONE, self.done_ttl]

    def release(self, keys: Sequence[str]) -> None:
        """Give back claims still in progress (not applied), so a retry applies them; `done` marks stay."""
        if keys:
            self._release(keys=[PREFIX + key for key in keys], args=[IN_PROGRESS])
