"""Stand-ins for the droplet provider: the simulated one, with launches that fail on demand."""
from __future__ import annotations

from chalicelib.providers.simulated import SimulatedProvider


class FailingLaunches(SimulatedProvider):
    """Raises `error` on every launch, or only on the `nth` (the others launch normally).

    A ProviderError is a refusal (the job fails); any other error is an outage (the message is retried)."""

    def __init__(self, error: Exception, nth: int | None = None) -> None:
        self.error, self.nth, self.launches = error, nth, 0

    def launch(self, droplet):  # noqa: ANN001
        self.launches += 1
        if self.nth is None or self.launches == self.nth:
            raise self.error
        return super().launch(droplet)
