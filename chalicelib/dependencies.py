"""Which failures mean "a dependency is down" (retry later) rather than "this input is wrong".

MariaDB's are turned into DependencyUnavailableError in the database helper (db.py); this module
recognises the rest (Redis, the Kafka broker), so the HTTP edge answers 503 instead of 500 and the event
pipeline waits an outage out instead of dead-lettering the batch.
"""
from __future__ import annotations

import sys

from chalicelib.errors import DependencyUnavailableError, ServiceUnavailableError

SOURCES = ("mariadb", "redis", "kafka", "aws")

# A client library's exception can only be in hand once that library is loaded, so each check below looks for
# its exceptions module in `sys.modules` instead of importing it: telling an error apart never costs a function
# the import of a client it does not use (kafka-python's package alone is about 170 ms, issue 16).


def _redis_errors() -> tuple[type[BaseException], ...]:
    if "redis.exceptions" not in sys.modules:
        return ()
    import redis.exceptions

    # BusyLoadingError (a restarting Redis replaying its AOF) is a ConnectionError subclass.
    return redis.exceptions.ConnectionError, redis.exceptions.TimeoutError


def _kafka_errors() -> tuple[type[BaseException], ...]:
    if "kafka.errors" not in sys.modules:  # also: a function that never talks to the broker
        return ()
    import kafka.errors
    names = ("NoBrokersAvailable", "KafkaTimeoutError", "KafkaConnectionError", "NodeNotReadyError",
             "RequestTimedOutError", "NotLeaderForPartitionError", "LeaderNotAvailableError", "BrokerNotAvailableError")
    return tuple(getattr(kafka.errors, name) for name in names if hasattr(kafka.errors, name))


def _aws_errors() -> tuple[type[BaseException], ...]:
    if "botocore.exceptions" not in sys.modules:
        return ()
    import botocore.exceptions as aws

    return aws.EndpointConnectionError, aws.ConnectTimeoutError, aws.ReadTimeoutError, aws.ConnectionClosedError


def as_unavailable(exc: BaseException) -> DependencyUnavailableError | None:
    """`exc` as a DependencyUnavailableError when it (or what it was raised from) says a dependency is
    unreachable; None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DependencyUnavailableError):
            return current
        if isinstance(current, _redis_errors()):
            return DependencyUnavailableError("redis", repr(current))
        if isinstance(current, _aws_errors()):
            return DependencyUnavailableError("aws", repr(current))
        kafka_errors = _kafka_errors()
        if kafka_errors and isinstance(current, kafka_errors):
            return DependencyUnavailableError("kafka", repr(current))
        current = current.__cause__
    return None


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says something the work needs is unreachable or refused it for now (retry when it
    is back), False when the work itself failed."""
    return isinstance(exc, ServiceUnavailableError) or as_unavailable(exc) is not None
