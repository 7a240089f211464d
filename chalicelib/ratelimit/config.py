"""Limiter configuration: scopes, defaults, bounds and the layout of the Redis hashes that override them.

A limiter is named (`diagnosis`, `jobs_create`, ...) and scoped (`global`, `user:<id>`,
`cluster:<id>`). Its refill rate and capacity come from the hash `limiter_config:<name>:<scope>`,
then from `limiter_config:<name>:global`, then from the built-in defaults: the v1 contract's lookup
order, applied field by field because v1 clients may store only one of the two fields.
`config_store.ConfigStore` reads and writes those hashes; this module needs no Redis client, so the
route table and the API models can use it without loading one.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from chalicelib.errors import ValidationError

SCOPE_TYPES = ("global", "user", "cluster", "source")  # source: a client address (issue 13)
CONFIG_KEY_PREFIX = "limiter_config:"

# Bounds on stored config. A capacity beyond this is a typo, not a policy, and a rate beyond it means
# "unlimited", which is what removing the limiter from the route table is for.
MAX_CAPACITY = 1_000_000
MAX_REFILL_RATE = 1_000_000.0
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_SCOPE_ID_LENGTH = 128


@dataclass(frozen=True)
class LimiterConfig:
    refill_rate: float
    capacity: int

    def as_dict(self) -> dict[str, float | int]:
        return {"refill_rate": self.refill_rate, "capacity": self.capacity}


# The v1 defaults: the original's env-overridable values, fixed here.
DEFAULT_CONFIG = LimiterConfig(refill_rate=0.2, capacity=5)
# The write limiters of issue 18 (one per resource, per caller): a burst of 60, then one a second.
WRITE_DEFAULT = LimiterConfig(refill_rate=1.0, capacity=60)
DEFAULTS: dict[str, LimiterConfig] = {
    "diagnosis": LimiterConfig(refill_rate=0.2, capacity=5),
    "jobs_create": LimiterConfig(refill_rate=0.1, capacity=3),
    # Requests that fail authentication, per source address: a burst of typos passes, a brute-force loop does not.
    "auth_failures": LimiterConfig(refill_rate=1.0, capacity=20),
    **{name: WRITE_DEFAULT for name in (
        "clusters_write", "droplets_write", "policies_write", "autoscaling_evaluate", "deployments_write",
        "providers_write", "schedule", "migrations_create", "hello", "ratelimit_config_write", "quotas_write",
        "keys_write")},
}


def default_config(name: str) -> LimiterConfig:
    return DEFAULTS.get(name, DEFAULT_CONFIG)


@dataclass(frozen=True)
class Scope:
    """Who a bucket limits: everyone (`global`), one user or one cluster."""

    type: str
    id: str | None = None

    @classmethod
    def of(cls, scope_type: str | None, scope_id: str | None) -> "Scope":
        """Build and validate a scope from API fields; ValidationError names the offending field."""
        scope_type = (scope_type or "global").strip()
        if scope_type not in SCOPE_TYPES:
            raise ValidationError(f"scope_type: must be one of {', '.join(SCOPE_TYPES)}")
        if scope_type == "global":
            return GLOBAL
        scope_id = (scope_id or "").strip()
        if not scope_id:
            raise ValidationError(f"scope_id: required for scope_type {scope_type}")
        if len(scope_id) > MAX_SCOPE_ID_LENGTH or any(c.isspace() or not c.isprintable() for c in scope_id):
            raise ValidationError(f"scope_id: at most {MAX_SCOPE_ID_LENGTH} printable characters without spaces")
        return cls(scope_type, scope_id)

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """`global`, `user:<id>` or `cluster:<id>`, as stored in keys."""
        scope_type, _, scope_id = text.partition(":")
        return cls.of(scope_type, scope_id or None)

    def __str__(self) -> str:
        return self.type if self.id is None else f"{self.type}:{self.id}"


GLOBAL = Scope("global")


def validate_name(name: str | None) -> str:
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise ValidationError("name: 1 to 64 letters, digits, '_', '.' or '-'")
    return name


def config_key(name: str, scope: Scope) -> str:
    """The Redis hash holding a limiter's config override, e.g. `limiter_config:diagnosis:cluster:c1`."""
    return f"{CONFIG_KEY_PREFIX}{name}:{scope}"


def parse_stored(key: str, fields: dict[str, str]) -> tuple[float | None, int | None]:
    """(refill_rate, capacity) of a stored hash, None for a field absent or invalid. Read leniently: a field someone wrote by hand that breaks the bounds is ignored
    (and logged), so the lookup falls through to the next level instead of failing every request."""
    rate = capacity = None
    try:
        if "refill_rate" in fields:
            value = float(fields["refill_rate"])
            if math.isfinite(value) and 0 < value <= MAX_REFILL_RATE:
                rate = value
        if "capacity" in fields:
            value = float(fields["capacity"])
            if math.isfinite(value) and value == int(value) and 1 <= value <= MAX_CAPACITY:
                capacity = int(value)
    except ValueError:
        pass
    if ("refill_rate" in fields and rate is None) or ("capacity" in fields and capacity is None):
        from chalicelib.observability import logger

        logger.warning("ignoring invalid stored limiter config", extra={"key": key, "config": fields})
    return rate, capacity


def stored_view(key: str, fields: dict[str, str]) -> dict[str, float | int]:
    """A stored hash as the API shows it: its valid fields as JSON numbers."""
    rate, capacity = parse_stored(key, fields)
    view: dict[str, float | int] = {}
    if rate is not None:
        view["refill_rate"] = rate
    if capacity is not None:
        view["capacity"] = capacity
    return view


def split_config_key(key: str) -> tuple[str, str] | None:
    """(name, scope) of a `limiter_config:<name>:<scope>` key, or None for anything else."""
    if not key.startswith(CONFIG_KEY_PREFIX):
        return None
    name, sep, scope = key[len(CONFIG_KEY_PREFIX):].partition(":")
    return (name, scope) if sep and name and scope else None


def escape_glob(text: str) -> str:
    """Escape Redis glob metacharacters so user-supplied filters match literally in SCAN."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
