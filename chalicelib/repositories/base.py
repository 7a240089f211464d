"""What every repository shares: id generation and the mapping of MySQL errors to domain errors."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pymysql
import pymysql.cursors

from chalicelib import db
from chalicelib.errors import ConcurrentUpdateError, ConflictError, NotFoundError
from chalicelib.tenancy import current_scope

# MySQL/MariaDB error numbers that are the caller's business, not a server fault.
ER_NO_REFERENCED_ROW = 1452  # FK child insert whose parent is gone
ER_DUP_ENTRY = 1062
ER_LOCK_DEADLOCK = 1213
ER_LOCK_WAIT_TIMEOUT = 1205


def utc_text(column: str) -> str:
    """Select a DATETIME column as UTC text with a `Z` (`2024-05-01 12:04:00.123456Z`), under its own name.

    The session time zone is UTC, so the value already is UTC; handing it over as text lets pydantic-core
    parse it into an aware datetime and print it back as ISO-8601 without a Python call per value.
    ORDER BY clauses must name the column table-qualified, so they sort on the indexed column, not this text.
    """
    return f"CONCAT({column}, 'Z') AS {column}"


def tenant_filter(column: str = "tenant_id", joiner: str = " AND ") -> tuple[str, tuple]:
    """(SQL, args) confining a statement to the current tenant (`chalicelib.tenancy`), on a table with its
    own tenant column; ("", ()) outside a request. `joiner` is " AND " or " WHERE "."""
    tenant = current_scope()
    return (f"{joiner}{column} = %s", (tenant,)) if tenant is not None else ("", ())


def via_cluster(column: str = "cluster_id", joiner: str = " AND ") -> tuple[str, tuple]:
    """(SQL, args) confining a table whose rows follow their cluster (metrics, policies, deployments)."""
    tenant = current_scope()
    if tenant is None:
        return "", ()
    return f"{joiner}{column} IN (SELECT id FROM clusters WHERE tenant_id = %s)", (tenant,)


def lock_cluster(cur: pymysql.cursors.Cursor, cluster_id: str) -> str:
    """Share-lock the cluster for the rest of the transaction, so it cannot be deleted between this check
    and the insert that references it, and return its tenant; NotFoundError("Cluster not found") when it
    does not exist in the current tenant."""
    cond, args = tenant_filter()
    cur.execute(f"SELECT id, tenant_id FROM clusters WHERE id = %s{cond} LOCK IN SHARE MODE", (cluster_id, *args))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError("Cluster not found")
    return row["tenant_id"]


@contextlib.contextmanager
def unit_of_work() -> Iterator[None]:
    """One MariaDB transaction around several repository calls: each call's own transaction joins it, so
    (for example) a state change and the outbox row announcing it commit together or not at all."""
    with db.transaction():
        yield


def new_id(prefix: str) -> str:
    """A collision-free id such as `cluster-<uuid4>` (the original built ids from names and seconds)."""
    return f"{prefix}-{uuid.uuid4()}"


@contextlib.contextmanager
def domain_errors(missing_parent: str = "referenced resource not found") -> Iterator[None]:
    """Turn the database's refusals into 404/409 instead of letting them surface as 500s."""
    try:
        yield
    except pymysql.err.IntegrityError as exc:
        code = exc.args[0] if exc.args else None
        if code == ER_NO_REFERENCED_ROW:
            raise NotFoundError(missing_parent) from None
        if code == ER_DUP_ENTRY:
            raise ConflictError("resource already exists") from None
        raise
    except pymysql.err.OperationalError as exc:
        if is_contention(exc):
            raise ConcurrentUpdateError("concurrent update in progress; retry") from None
        raise


def is_contention(exc: BaseException) -> bool:
    """True when the database refused a statement because of another transaction (a deadlock or a lock wait
    that timed out), not because of the statement: the same work can succeed when retried."""
    if isinstance(exc, ConcurrentUpdateError):
        return True
    return (isinstance(exc, pymysql.err.OperationalError) and bool(exc.args)
            and exc.args[0] in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT))
