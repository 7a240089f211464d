"""The one error hierarchy. Each error carries its HTTP status; `chalicelib.http` maps it to a response.

The base class derives from ChaliceUnhandledError only so that Chalice hands these exceptions to our
error middleware untouched instead of turning them into its own {"Code", "Message"} bodies.
"""
from __future__ import annotations

from chalice import ChaliceUnhandledError


class ClusterGenieError(ChaliceUnhandledError):
    status_code = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class ValidationError(ClusterGenieError):
    """The request is malformed or breaks a rule; nothing was written."""

    status_code = 400


class PayloadTooLargeError(ClusterGenieError):
    """The request body is over the size limit; nothing was read further."""

    status_code = 413


class NotFoundError(ClusterGenieError):
    status_code = 404


class ConflictError(ClusterGenieError):
    """A concurrent update won, or the transition is not allowed in the current state."""

    status_code = 409


class RateLimitedError(ClusterGenieError):
    status_code = 429


class ServiceUnavailableError(ClusterGenieError):
    """A dependency (queue, broker) refused the work; the caller may retry."""

    status_code = 503
