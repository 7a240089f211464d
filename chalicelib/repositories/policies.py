"""Autoscaling policies and each autoscaled cluster's scale state, in MySQL."""
from __future__ import annotations

from typing import Any

import pymysql

from chalicelib import db
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.repositories.base import ER_LOCK_DEADLOCK, domain_errors, lock_cluster, new_id, utc_text, via_cluster

_FIELDS = ("name", "type", "min_replicas", "max_replicas", "metric_type", "metric_trigger", "time_window",
           "cost_limit", "enabled", "cooldown_seconds")
_CLAIM_ATTEMPTS = 3
_COLUMNS = ", ".join(["id", "cluster_id", *_FIELDS, "version", utc_text("created_at"), utc_text("updated_at")])


class PolicyRepository:
    def create(self, cluster_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Insert a policy for an existing cluster (NotFoundError otherwise)."""
        policy_id = new_id("policy")
        with db.transaction() as cur, domain_errors("Cluster not found"):
            lock_cluster(cur, cluster_id)
            cur.execute(
                f"INSERT INTO policies (id, cluster_id, {', '.join(_FIELDS)}) "
                f"VALUES (%s, %s, {', '.join(['%s'] * len(_FIELDS))})",
                (policy_id, cluster_id, *(fields[f] for f in _FIELDS)),
            )
            cur.execute(f"SELECT {_COLUMNS} FROM policies WHERE id = %s", (policy_id,))
            return cur.fetchone()

    def get(self, policy_id: str) -> dict[str, Any]:
        cond, args = via_cluster()
        row = db.query_one(f"SELECT {_COLUMNS} FROM policies WHERE id = %s{cond}", (policy_id, *args))
        if row is None:
            raise NotFoundError("Policy not found")
        return row

    def list(self, cluster_id: str, *, enabled_only: bool = False) -> list[dict[str, Any]]:
        """The cluster's policies, oldest first."""
        extra = " AND enabled = TRUE" if enabled_only else ""
        cond, args = via_cluster()
        return db.query(f"SELECT {_COLUMNS} FROM policies WHERE cluster_id = %s{extra}{cond} "
                        "ORDER BY policies.created_at, policies.id", (cluster_id, *args))

    def clusters_with_enabled_policies(self) -> list[str]:
        return [r["cluster_id"] for r in db.query(
            "SELECT DISTINCT cluster_id FROM policies WHERE enabled = TRUE ORDER BY cluster_id")]

    def update(self, policy_id: str, expected_version: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Replace the policy's fields if it is still at `expected_version` (ConflictError otherwise)."""
        cond, args = via_cluster()
        with db.transaction() as cur, domain_errors():
            cur.execute(
                f"UPDATE policies SET {''.join(f'{f} = %s, ' for f in _FIELDS)}version = version + 1 "
                f"WHERE id = %s AND version = %s{cond}",
                (*(fields[f] for f in _FIELDS), policy_id, expected_version, *args),
            )
            if cur.rowcount == 0:
                cur.execute(f"SELECT id FROM policies WHERE id = %s{cond}", (policy_id, *args))
                if cur.fetchone() is None:
                    raise NotFoundError("Policy not found")
                raise ConflictError(f"policy {policy_id} was modified concurrently; re-read and retry")
            cur.execute(f"SELECT {_COLUMNS} FROM policies WHERE id = %s", (policy_id,))
            return cur.fetchone()

    def delete(self, policy_id: str) -> None:
        cond, args = via_cluster()
        with db.transaction() as cur:
            cur.execute(f"DELETE FROM policies WHERE id = %s{cond}", (policy_id, *args))
            if cur.rowcount == 0:
                raise NotFoundError("Policy not found")

    # --- the cluster's scale state (cool-down and the race between evaluations) ------------------------
    def last_scaled_at(self, cluster_id: str) -> str | None:
        """When the autoscaler last scaled the cluster (UTC text with Z), or None."""
        row = db.query_one(f"SELECT {utc_text('last_scaled_at')} FROM autoscaling_state WHERE cluster_id = %s",
                           (cluster_id,))
        return row["last_scaled_at"] if row else None

    def claim_scale(self, cluster_id: str, cooldown_seconds: int) -> tuple[bool, str | None]:
        """Take the right to scale the cluster now: true only if no scale happened within
        `cooldown_seconds`. A conditional UPDATE under the row's lock decides, so of racing evaluations
        (separate connections, separate Lambda instances) exactly one wins. Returns (won, the previous
        last_scaled_at) so that a failed enqueue can give the claim back."""
        # The state row is created in its own short transaction: racing first-time inserts of one key
        # inside the claiming transaction deadlock each other (insert-intention vs. duplicate-key locks).
        with db.transaction() as cur:
            cur.execute("INSERT IGNORE INTO autoscaling_state (cluster_id) VALUES (%s)", (cluster_id,))
        for attempt in range(_CLAIM_ATTEMPTS):
            try:
                with db.transaction() as cur:
                    cur.execute(f"SELECT {utc_text('last_scaled_at')} FROM autoscaling_state "
                                "WHERE cluster_id = %s FOR UPDATE", (cluster_id,))
                    row = cur.fetchone()
                    previous = row["last_scaled_at"] if row else None
                    cur.execute(
                        "UPDATE autoscaling_state SET last_scaled_at = UTC_TIMESTAMP(6) WHERE cluster_id = %s AND "
                        "(last_scaled_at IS NULL OR last_scaled_at <= UTC_TIMESTAMP(6) - INTERVAL %s SECOND)",
                        (cluster_id, cooldown_seconds),
                    )
                    return cur.rowcount == 1, previous
            except pymysql.err.OperationalError as exc:  # a deadlock victim simply asks again
                if exc.args[0] != ER_LOCK_DEADLOCK or attempt == _CLAIM_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def record_scale_job(self, cluster_id: str, job_id: str) -> None:
        with db.transaction() as cur:
            cur.execute("UPDATE autoscaling_state SET last_job_id = %s WHERE cluster_id = %s", (job_id, cluster_id))

    def release_claim(self, cluster_id: str, previous: str | None) -> None:
        """Give back a claim whose scale job could not be enqueued."""
        value = previous[:-1] if previous else None
        with db.transaction() as cur:
            cur.execute("UPDATE autoscaling_state SET last_scaled_at = %s WHERE cluster_id = %s", (value, cluster_id))
