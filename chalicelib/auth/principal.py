"""The caller of the current request, and the roles' order."""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

ROLES = ("viewer", "operator", "admin")  # each includes the ones before it
RANK = {role: rank for rank, role in enumerate(ROLES)}
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Principal:
    id: str  # `key:<key id>` or `token:<sub>`; never the secret
    tenant: str
    role: str
    kind: str  # "key", "token", "local" (authentication off) or "anonymous" (a public route)
    name: str = ""

    def has_role(self, role: str) -> bool:
        return RANK.get(self.role, -1) >= RANK[role]

    def as_dict(self) -> dict[str, str]:
        return {"principal": self.id, "tenant": self.tenant, "role": self.role, "kind": self.kind, "name": self.name}


ANONYMOUS = Principal(id="anonymous", tenant=DEFAULT_TENANT, role="none", kind="anonymous")
# Who calls when authentication is off (the local stage only): the original's world, one tenant, no roles.
LOCAL = Principal(id="local", tenant=DEFAULT_TENANT, role="admin", kind="local", name="authentication off")

_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The principal the auth middleware established for this request (ANONYMOUS outside one)."""
    return _current.get()


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    """The principal for the body's duration (one request), restored afterwards: a warm container's next
    invocation never inherits it."""
    token = _current.set(principal)
    try:
        yield
    finally:
        _current.reset(token)


def current_tenant() -> str:
    return _current.get().tenant


def is_platform_admin(principal: Principal) -> bool:
    """An admin of the platform tenant (`CG_AUTH_PLATFORM_TENANT`): administers every tenant."""
    from chalicelib.settings import get_settings

    return principal.role == "admin" and principal.tenant == get_settings().auth_platform_tenant


def administered_tenant(principal: Principal, requested: str | None = None) -> str | None:
    """The tenant an admin's request about keys or the audit log is confined to: its own, unless it is a
    platform admin (then `requested`, None meaning every tenant). Naming another tenant otherwise is a 403."""
    from chalicelib.errors import PermissionDeniedError

    if is_platform_admin(principal):
        return requested
    if requested is not None and requested != principal.tenant:
        raise PermissionDeniedError("an admin manages its own tenant only")
    return principal.tenant
