"""The one error hierarchy: plain exceptions that say what went wrong.

They know nothing of HTTP; `chalicelib.http.STATUS_FOR` is the one table that maps them to status codes.
"""
from __future__ import annotations


class ClusterGenieError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(ClusterGenieError):
    """The request is malformed or breaks a rule; nothing was written."""


class PayloadTooLargeError(ClusterGenieError):
    """The request body is over the size limit; nothing was read further."""


class IdempotencyKeyReusedError(ClusterGenieError):
    """An Idempotency-Key already used for a different request (issue 18); nothing was done."""


class NotFoundError(ClusterGenieError):
    """The named thing does not exist."""


class ConflictError(ClusterGenieError):
    """A concurrent update won, or the transition is not allowed in the current state."""


class ConcurrentUpdateError(ConflictError):
    """The database gave up on a statement because of another transaction (a deadlock, or a lock wait that
    timed out): nothing about the request is wrong, and the same request can succeed when retried."""


class RateLimitedError(ClusterGenieError):
    """The caller has used up its allowance."""


class ServiceUnavailableError(ClusterGenieError):
    """A dependency (queue, broker) refused the work; the caller may retry."""


class AuthenticationError(ClusterGenieError):
    """No usable credential: missing, malformed, unknown, expired, revoked or wrongly signed."""


class PermissionDeniedError(ClusterGenieError):
    """The caller is known but its role does not allow this."""


class DependencyUnavailableError(ServiceUnavailableError):
    """A backing store (MariaDB, Redis, the Kafka broker) could not be reached: nothing was decided, the
    caller may retry once it is back. `source` names the store (`mariadb`, `redis`, `kafka`)."""

    def __init__(self, source: str, detail: str = "") -> None:
        super().__init__(f"{source} unavailable; retry later")
        self.source = source
        self.detail = detail
