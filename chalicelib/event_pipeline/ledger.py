"""Idempotency for at-least-once delivery: which events were already applied.

One Redis key per event, `events:seen:<event key>`, set NX: `p` while an invocation applies it (expiring
with the invocation's remaining time, so a crashed invocation does not hold it for long), `d` once applied
(kept `event_dedup_ttl_seconds`, by default 7 days, Kafka's default retention: a replay within it changes
nothing). The event key is the event's own `id` when it has one, else `<topic>:<partition>:<offset>`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PREFIX = "events:seen:"
IN_PROGRESS = "p"
DONE = "d"

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

    def claim(self, keys: Sequence[str], in_progress_ttl_seconds: int) -> list[bool]:
        """Claim every key in one round trip: True where this invocation must apply the event, False where
        it was already applied. Raises EventsInFlight (having released its own claims) when another
        invocation holds one of them."""
        # A key twice in one batch (the same event id at two offsets): the first occurrence claims it.
        first: dict[str, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        unique = list(first)
        pipe = self.redis.pipeline(transaction=False)
        for key in unique:
            pipe.set(PREFIX + key, IN_PROGRESS, nx=True, ex=max(1, in_progress_ttl_seconds))
        won = dict(zip(unique, (bool(ok) for ok in pipe.execute())))
        claimed = [won[key] and first[key] == index for index, key in enumerate(keys)]
        others = [key for key in unique if not won[key]]
        if others:
            pipe = self.redis.pipeline(transaction=False)
            for key in others:
                pipe.get(PREFIX + key)
            busy = [key for key, state in zip(others, pipe.execute()) if state != DONE]
            if busy:
                self.release([key for key in unique if won[key]])
                raise EventsInFlight(f"{len(busy)} event(s) being applied elsewhere, e.g. {busy[0]}")
        return claimed

    def done(self, keys: Sequence[str], pipe: Any = None) -> None:
        """Mark applied (on `pipe` if given, to land atomically with a Redis-side effect)."""
        own = pipe is None
        pipe = self.redis.pipeline(transaction=False) if own else pipe
        for key in keys:
            pipe.set(PREFIX + key, DONE, ex=self.done_ttl)
        if own:
            pipe.execute()

    def release(self, keys: Sequence[str]) -> None:
        """Give back claims still in progress (not applied), so a retry applies them; `done` marks stay."""
        if keys:
            self._release(keys=[PREFIX + key for key in keys], args=[IN_PROGRESS])
