"""The tenant the current unit of work is confined to (issue 13).

An API request is confined to its principal's tenant: the auth middleware sets it for the request and
clears it afterwards. Every repository query reads it (`repositories.base.tenant_filter`/`via_cluster`) and
adds the condition to its own SQL, so another tenant's row is never read, changed or counted: it is simply
not found (404). Outside a request - the job worker, the event handler, the scheduled functions - there is
no confinement (None): they address rows by id and work across tenants, and what they create inherits the
tenant of the cluster it belongs to.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

DEFAULT_TENANT = "default"

_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant_scope", default=None)


def current_scope() -> str | None:
    """The tenant this unit of work is confined to; None: every tenant (a function, not a request)."""
    return _scope.get()


def owner_tenant() -> str:
    """The tenant of a new row that has no parent to inherit one from."""
    return _scope.get() or DEFAULT_TENANT


@contextlib.contextmanager
def confined_to(tenant: str | None) -> Iterator[None]:
    token = _scope.set(tenant)
    try:
        yield
    finally:
        _scope.reset(token)
