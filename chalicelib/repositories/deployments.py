"""Deployments and their step log in MySQL."""
from __future__ import annotations

import json
from typing import Any

from chalicelib import db
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.repositories.base import domain_errors, lock_cluster, new_id, utc_text, via_cluster

_COLUMNS = ", ".join(["id", "cluster_id", "version", "strategy", "target_percent", "status", "current_percent",
                      "plan", "reason", "job_id", utc_text("created_at"), utc_text("updated_at")])
_STEP_COLUMNS = ", ".join(["deployment_id", "step", "action", "percent", "status", "message",
                           "CONCAT(created_at, 'Z') AS timestamp"])


def _attach_logs(cur: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["plan"] = json.loads(r["plan"])
        r["logs"] = []
    if rows:
        cur.execute(f"SELECT {_STEP_COLUMNS} FROM deployment_steps WHERE deployment_id IN "
                    f"({', '.join(['%s'] * len(rows))}) ORDER BY deployment_steps.id", tuple(by_id))
        for step in cur.fetchall():
            by_id[step["deployment_id"]]["logs"].append(step)
    return rows


class DeploymentRepository:
    def create(self, *, cluster_id: str, version: str, strategy: str, target_percent: int,
               plan: list[int]) -> dict[str, Any]:
        """Insert a `pending` deployment for an existing cluster (NotFoundError otherwise)."""
        deployment_id = new_id("deployment")
        with db.transaction() as cur, domain_errors("Cluster not found"):
            lock_cluster(cur, cluster_id)
            cur.execute("INSERT INTO deployments (id, cluster_id, version, strategy, target_percent, plan) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        (deployment_id, cluster_id, version, strategy, target_percent, json.dumps(plan)))
            cur.execute(f"SELECT {_COLUMNS} FROM deployments WHERE id = %s", (deployment_id,))
            return _attach_logs(cur, [cur.fetchone()])[0]

    def get(self, deployment_id: str) -> dict[str, Any]:
        cond, args = via_cluster()
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM deployments WHERE id = %s{cond}", (deployment_id, *args))
            row = cur.fetchone()
            if row is None:
                raise NotFoundError("Deployment not found")
            return _attach_logs(cur, [row])[0]

    def list(self, cluster_id: str) -> list[dict[str, Any]]:
        """The cluster's deployments, newest first, with their logs."""
        cond, args = via_cluster()
        with db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM deployments WHERE cluster_id = %s{cond} "
                        "ORDER BY deployments.created_at DESC, deployments.id DESC", (cluster_id, *args))
            return _attach_logs(cur, list(cur.fetchall()))

    def move(self, deployment_id: str, from_statuses: tuple[str, ...], to_status: str, *,
             reason: str | None = None, current_percent: int | None = None, job_id: str | None = None) -> None:
        """Set the status only if it is one of `from_statuses` (ConflictError otherwise; NotFoundError if gone)."""
        sets, args = ["status = %s"], [to_status]
        for column, value in (("reason", reason), ("current_percent", current_percent), ("job_id", job_id)):
            if value is not None:
                sets.append(f"{column} = %s")
                args.append(value)
        cond, tenant_args = via_cluster()
        with db.transaction() as cur:
            cur.execute(f"UPDATE deployments SET {', '.join(sets)} WHERE id = %s AND status IN "
                        f"({', '.join(['%s'] * len(from_statuses))}){cond}",
                        (*args, deployment_id, *from_statuses, *tenant_args))
            if cur.rowcount == 0:
                cur.execute(f"SELECT status FROM deployments WHERE id = %s{cond}", (deployment_id, *tenant_args))
                row = cur.fetchone()
                if row is None:
                    raise NotFoundError("Deployment not found")
                raise ConflictError(f"deployment {deployment_id} is {row['status']}, not {' or '.join(from_statuses)}")

    def set_progress(self, deployment_id: str, current_percent: int) -> None:
        with db.transaction() as cur:
            cur.execute("UPDATE deployments SET current_percent = %s WHERE id = %s", (current_percent, deployment_id))

    def set_job(self, deployment_id: str, job_id: str) -> None:
        with db.transaction() as cur:
            cur.execute("UPDATE deployments SET job_id = %s WHERE id = %s", (job_id, deployment_id))

    def log_step(self, deployment_id: str, *, step: int, action: str, percent: int, status: str, message: str) -> None:
        with db.transaction() as cur:
            cur.execute("INSERT INTO deployment_steps (deployment_id, step, action, percent, status, message) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", (deployment_id, step, action, percent, status, message))
