"""Jobs in MySQL, with optimistic concurrency on every state change.

Rows carry `parameters` and `result` as JSON text (MariaDB's JSON is LONGTEXT on the wire); the `Job`
model parses them.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib import db
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.repositories import row_counts
from chalicelib.repositories.base import domain_errors, lock_cluster, new_id, tenant_filter, utc_text

_COLUMNS = ", ".join(["id", "tenant_id", "cluster_id", "type", "status", "trace_id", "progress", "parameters", "result", "error",
                      "version", utc_text("created_at"), utc_text("updated_at"), utc_text("started_at"),
                      utc_text("completed_at")])

# The only columns a listing may sort on; user input selects a key, never reaches the SQL text.
SORT_COLUMNS: dict[str, str] = {"created_at": "jobs.created_at", "id": "jobs.id"}
_STATE_FIELDS = ("status", "progress", "result", "error", "started_at", "completed_at", "updated_at")


def page_sql(sort_by: str, sort_dir: str, where: str = "") -> str:
    """The statement for one page of jobs (`where`: the tenant condition of `tenant_filter`, or "" outside a
    request; args: its own, limit, offset); it reads
    idx_jobs_created or the primary key, within a tenant idx_jobs_tenant or idx_jobs_tenant_id (0019)."""
    column = SORT_COLUMNS[sort_by]
    direction = "ASC" if sort_dir == "asc" else "DESC"
    # `id` breaks ties so that pages never overlap or skip rows.
    order = f"{column} {direction}" + ("" if column == "jobs.id" else f", jobs.id {direction}")
    # Within a tenant the index is named: as the table grows the optimiser otherwise switches to the
    # tenant-less order index and skips other tenants' rows one by one (issue 16).
    hint = (" FORCE INDEX (idx_jobs_tenant_id)" if column == "jobs.id" else " FORCE INDEX (idx_jobs_tenant)") if where else ""
    return f"SELECT {_COLUMNS} FROM jobs{hint}{where} ORDER BY {order} LIMIT %s OFFSET %s"


class JobRepository:
    """A job belongs to its cluster's tenant; every statement is confined to the current tenant
    (`chalicelib.tenancy`), none outside a request (the worker and the sweeper address jobs by id)."""

    def create(self, *, job_type: str, cluster_id: str, parameters: dict[str, str], trace_id: str) -> dict[str, Any]:
        """Insert a `queued` job for an existing cluster (NotFoundError otherwise)."""
        job_id = new_id("job")
        with db.transaction() as cur, domain_errors("Cluster not found"):
            tenant = lock_cluster(cur, cluster_id)
            cur.execute(
                "INSERT INTO jobs (id, tenant_id, cluster_id, type, status, trace_id, progress, parameters) "
                f"VALUES (%s, %s, %s, %s, 'queued', %s, 0, %s) RETURNING {_COLUMNS}",  # one round trip (issue 16)
                (job_id, tenant, cluster_id, job_type, trace_id, json.dumps(parameters, separators=(",", ":"))),
            )
            return cur.fetchone()

    def get(self, job_id: str, *, for_update: bool = False) -> dict[str, Any]:
        """The job; NotFoundError when missing. `for_update` locks the row for the caller's unit of work
        (and reads the latest committed version, not the transaction's snapshot)."""
        cond, args = tenant_filter()
        with db.transaction() as cur, domain_errors():
            cur.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = %s{cond}" + (" FOR UPDATE" if for_update else ""),
                        (job_id, *args))
            row = cur.fetchone()
        if row is None:
            raise NotFoundError("Job not found")
        return row

    def get_many(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """The jobs of `job_ids` that exist, in no particular order, in one statement (the job worker reads a
        batch's jobs this way)."""
        if not job_ids:
            return []
        cond, args = tenant_filter()
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id IN ({', '.join(['%s'] * len(job_ids))}){cond}",
                        (*job_ids, *args))
            return list(cur.fetchall())

    def list(self, *, page: int, page_size: int, sort_by: str = "created_at",
             sort_dir: str = "desc") -> tuple[list[dict[str, Any]], int]:
        """One page of jobs and the exact total (from `row_counts`, not a COUNT over the tenant's jobs), read
        in one transaction (one snapshot)."""
        cond, args = tenant_filter(joiner=" WHERE ")
        with db.transaction() as cur:
            cur.execute(page_sql(sort_by, sort_dir, cond), (*args, page_size, (page - 1) * page_size))
            rows = list(cur.fetchall())
            total = row_counts.tenant_total(cur, "jobs")
        return rows, total

    def count_by_status(self) -> dict[str, int]:
        """How many jobs are in each status (statuses with none are absent)."""
        return self.status_summary()[0]

    def status_summary(self) -> tuple[dict[str, int], float]:
        """Jobs by status, and how many seconds the stalest `processing` job has not moved: both read on
        the `(status, updated_at)` index."""
        with db.transaction() as cur:
            cur.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            counts = {row["status"]: int(row["n"]) for row in cur.fetchall()}
            cur.execute("SELECT TIMESTAMPDIFF(MICROSECOND, MIN(updated_at), UTC_TIMESTAMP(6)) AS age "
                        "FROM jobs WHERE status = 'processing'")
            age = cur.fetchone()["age"]
        return counts, max(0.0, float(age or 0) / 1e6)

    def exists(self, job_id: str) -> bool:
        cond, args = tenant_filter()
        return db.query_one(f"SELECT 1 AS one FROM jobs WHERE id = %s{cond}", (job_id, *args)) is not None

    def stale_ids(self, status: str, updated_before: Any, limit: int = 100) -> list[str]:
        """Ids of jobs in `status` not updated since `updated_before` (naive UTC), oldest first; reads
        the (status, updated_at) index."""
        with db.transaction() as cur:
            cur.execute("SELECT id FROM jobs WHERE status = %s AND updated_at < %s ORDER BY updated_at LIMIT %s",
                        (status, updated_before, limit))
            return [row["id"] for row in cur.fetchall()]

    def note_attempt_error(self, job_id: str, error: str) -> None:
        """Record why this delivery failed, when it was the job's own doing (the sweeper reads it)."""
        with db.transaction() as cur:
            cur.execute("UPDATE jobs SET attempt_error = %s WHERE id = %s", (error[:2000], job_id))

    def attempt_record(self, job_id: str) -> tuple[str | None, int]:
        """(the job's own latest delivery error or None, how often the sweeper redrove it); NotFoundError."""
        row = db.query_one("SELECT attempt_error, redrives FROM jobs WHERE id = %s", (job_id,))
        if row is None:
            raise NotFoundError("Job not found")
        return row["attempt_error"], int(row["redrives"])

    def count_redrive(self, job_id: str) -> None:
        """One more redrive; `updated_at` is touched, so a redriven job is not stale until it stalls again."""
        with db.transaction() as cur, domain_errors():
            cur.execute("UPDATE jobs SET redrives = redrives + 1 WHERE id = %s", (job_id,))

    @staticmethod
    def _state_update(job_id: str, expected_version: int, state: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        fields = [f for f in _STATE_FIELDS if f in state]
        values = [json.dumps(state[f]) if f == "result" and state[f] is not None else state[f] for f in fields]
        assignments = "".join(f"{f} = %s, " for f in fields)
        return (f"UPDATE jobs SET {assignments}version = version + 1 WHERE id = %s AND version = %s",
                (*values, job_id, expected_version))

    def save_state_at(self, job_id: str, expected_version: int, state: dict[str, Any]) -> bool:
        """`save_state` for a caller that already holds the job at `expected_version` (the job worker): one
        UPDATE, nothing read back. False, with nothing changed, when the job is no longer at that version
        (or gone): the caller then reads it and decides again."""
        with db.transaction() as cur, domain_errors():
            cur.execute(*self._state_update(job_id, expected_version, state))
            return cur.rowcount == 1

    def save_state(self, job_id: str, expected_version: int, state: dict[str, Any]) -> dict[str, Any]:
        """Write the state fields (status, progress, result, error, started_at, completed_at) only if
        the job is still at `expected_version`, bumping the version. ConflictError if another writer won."""
        with db.transaction() as cur, domain_errors():
            cur.execute(*self._state_update(job_id, expected_version, state))
            if cur.rowcount == 0:
                cur.execute("SELECT version FROM jobs WHERE id = %s", (job_id,))
                if cur.fetchone() is None:
                    raise NotFoundError("Job not found")
                raise ConflictError(f"job {job_id} was modified concurrently; re-read and retry")
            cur.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
            return cur.fetchone()
