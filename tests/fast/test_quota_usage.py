"""The quota usage counters (migration 0021, issue 16) give exactly the COUNT(*)s they replace.

A quota check reads `quota_usage` (SUM over slots) instead of counting a scope's live droplets, active jobs and
active deployments. Here random sequences of writes (inserts, status moves in and out of the counted sets,
multi-row updates, deletes, rolled-back transactions, changes of a row's cluster, type or tenant, clusters deleted
through the repository and by hand with ON DELETE CASCADE), also from several connections at once, end with every
scope's usage read from the counters equal to the COUNT(*) definition the counters replaced (`REFERENCE`, the SQL
of `QuotaRepository` before 0021). Migration apply (the backfill) and rollback are checked on the real runner.
"""
from __future__ import annotations

import os
import random
import threading
from typing import Any

import pymysql
import pytest

from chalicelib import db
from chalicelib.repositories import ClusterRepository
from chalicelib.repositories.quotas import QuotaRepository
from chalicelib.services.quotas import COUNTED_JOB_TYPES

THIS = "0021_quota_usage"

# Case and trailing-space variants compare equal to their type in jobs.type's collation (utf8mb4_unicode_ci,
# PAD SPACE): COUNT(*) ... type IN ('provision') counts 'Provision ' too, and so must the counters.
JOB_TYPES = (*COUNTED_JOB_TYPES, "terminate", "Provision", "scale ")
JOB_STATUSES = ("queued", "processing", "completed", "failed", "cancelled")
DROPLET_STATUSES = ("provisioning", "active", "error", "off", "deleted")
DEPLOYMENT_STATUSES = ("pending", "running", "rolling_back", "succeeded", "failed", "rolled_back")
TENANTS = ("default", "t-a", "t-b")
# The sets of job types a usage is read for: the quota check's, and each type alone.
TYPE_SETS = (COUNTED_JOB_TYPES, *[(t,) for t in ("provision", "scale", "terminate", "deploy")])


def reference(scope: str, subject: str, job_types: tuple[str, ...]) -> dict[str, int]:
    """A scope's usage by the COUNT(*) definition (QuotaRepository's `_usage_columns` before migration 0021)."""
    owner = "cluster_id" if scope == "cluster" else "tenant_id"
    deployments_of = ("cluster_id = %s" if scope == "cluster"
                      else "cluster_id IN (SELECT id FROM clusters WHERE tenant_id = %s)")
    types = ", ".join(["%s"] * len(job_types))
    [row] = db.query(
        f"SELECT (SELECT COUNT(*) FROM droplets WHERE {owner} = %s AND status <> 'deleted') AS droplets, "
        f"(SELECT COUNT(*) FROM jobs WHERE {owner} = %s AND status IN ('queued', 'processing') AND type IN ({types})) "
        "AS concurrent_jobs, "
        f"(SELECT COUNT(*) FROM deployments WHERE {deployments_of} "
        "AND status IN ('pending', 'running', 'rolling_back')) AS deployments",
        (subject, subject, *job_types, subject))
    return {k: int(v) for k, v in row.items()}


def assert_counters_exact(clusters: set[str], tenants: tuple[str, ...] = TENANTS) -> None:
    """Every scope's usage from the counters equals the COUNT(*) definition, for each set of job types; and no
    counter sums below zero."""
    quotas = QuotaRepository()
    wrong = []
    for job_types in TYPE_SETS:
        for cluster_id in sorted(clusters):
            got, want = quotas.cluster_usage(cluster_id, job_types), reference("cluster", cluster_id, job_types)
            if got != want:
                wrong.append(("cluster", cluster_id, job_types, got, want))
        for tenant in tenants:
            got, want = quotas.tenant_usage(tenant, job_types), reference("tenant", tenant, job_types)
            if got != want:
                wrong.append(("tenant", tenant, job_types, got, want))
    assert wrong == []
    assert db.query("SELECT scope, subject, kind, part, SUM(n) AS n FROM quota_usage "
                    "GROUP BY scope, subject, kind, part HAVING SUM(n) < 0") == []


class Writer:
    """Random writes of the shapes the app makes (and a few it never makes), on one connection."""

    def __init__(self, rng: random.Random, conn: Any, prefix: str) -> None:
        self.rng, self.conn, self.prefix, self.serial = rng, conn, prefix, 0

    def new_id(self, kind: str) -> str:
        self.serial += 1
        return f"{self.prefix}{kind}-{self.serial}"

    def pick(self, cur: Any, table: str, where: str = "", args: tuple = ()) -> str | None:
        cur.execute(f"SELECT id FROM {table} WHERE id LIKE %s{where} ORDER BY id", (f"{self.prefix}%", *args))
        ids = [row["id"] for row in cur.fetchall()]
        return self.rng.choice(ids) if ids else None

    def some_cluster(self, cur: Any) -> tuple[str, str] | None:
        cur.execute("SELECT id, tenant_id FROM clusters WHERE id LIKE 'qc-%%' ORDER BY id")
        rows = cur.fetchall()
        return (lambda row: (row["id"], row["tenant_id"]))(self.rng.choice(rows)) if rows else None

    # --- one write each ----------------------------------------------------------------------------------------
    def add_cluster(self, cur: Any) -> None:
        cur.execute("INSERT INTO clusters (id, tenant_id, name, region) VALUES (%s, %s, 'q', 'nyc3')",
                    (f"qc-{self.new_id('c')}", self.rng.choice(TENANTS)))

    def add_droplet(self, cur: Any) -> None:
        cluster = self.some_cluster(cur)
        if cluster is None or self.rng.random() < 0.2:  # a droplet without a cluster counts for its tenant only
            cluster_id, tenant = None, self.rng.choice(TENANTS)
        else:
            cluster_id, tenant = cluster
        cur.execute("INSERT INTO droplets (id, tenant_id, cluster_id, name, region, size, image, status) "
                    "VALUES (%s, %s, %s, 'd', 'nyc3', 's-1vcpu-1gb', 'ubuntu', %s)",
                    (self.new_id("d"), tenant, cluster_id, self.rng.choice(DROPLET_STATUSES)))

    def add_job(self, cur: Any) -> None:
        cluster = self.some_cluster(cur)
        if cluster is not None:
            cur.execute("INSERT INTO jobs (id, tenant_id, cluster_id, type, status, trace_id, parameters) "
                        "VALUES (%s, %s, %s, %s, %s, 't', '{}')",
                        (self.new_id("j"), cluster[1], cluster[0], self.rng.choice(JOB_TYPES),
                         self.rng.choice(JOB_STATUSES)))

    def add_deployment(self, cur: Any) -> None:
        cluster = self.some_cluster(cur)
        if cluster is not None:
            cur.execute("INSERT INTO deployments (id, cluster_id, version, strategy, target_percent, status, plan) "
                        "VALUES (%s, %s, 'v1', 'canary', 50, %s, '[50]')",
                        (self.new_id("dep"), cluster[0], self.rng.choice(DEPLOYMENT_STATUSES)))

    def move(self, cur: Any) -> None:
        table, statuses = self.rng.choice((("droplets", DROPLET_STATUSES), ("jobs", JOB_STATUSES),
                                           ("deployments", DEPLOYMENT_STATUSES)))
        row = self.pick(cur, table)
        if row is not None:
            cur.execute(f"UPDATE {table} SET status = %s WHERE id = %s", (self.rng.choice(statuses), row))

    def move_many(self, cur: Any) -> None:
        """One statement moving many rows (a cluster's), each row's trigger firing."""
        cluster = self.some_cluster(cur)
        if cluster is not None:
            table, statuses = self.rng.choice((("droplets", DROPLET_STATUSES), ("jobs", JOB_STATUSES),
                                               ("deployments", DEPLOYMENT_STATUSES)))
            cur.execute(f"UPDATE {table} SET status = %s WHERE cluster_id = %s AND id LIKE %s",
                        (self.rng.choice(statuses), cluster[0], f"{self.prefix}%"))

    def touch(self, cur: Any) -> None:
        """An update outside the counted columns (progress, an IP address): no counter moves."""
        job, droplet = self.pick(cur, "jobs"), self.pick(cur, "droplets")
        if job is not None:
            cur.execute("UPDATE jobs SET progress = 50, version = version + 1 WHERE id = %s", (job,))
        if droplet is not None:
            cur.execute("UPDATE droplets SET ip_address = '10.0.0.1' WHERE id = %s", (droplet,))

    def rehome(self, cur: Any) -> None:
        """What the app never does, which the triggers still count: a row moving to another cluster, tenant or
        job type (a droplet also to no cluster)."""
        cluster = self.some_cluster(cur)
        if cluster is None:
            return
        choice = self.rng.randrange(3)
        if choice == 0 and (row := self.pick(cur, "jobs")) is not None:
            cur.execute("UPDATE jobs SET cluster_id = %s, tenant_id = %s, type = %s WHERE id = %s",
                        (cluster[0], cluster[1], self.rng.choice(JOB_TYPES), row))
        elif choice == 1 and (row := self.pick(cur, "droplets")) is not None:
            target = (None, self.rng.choice(TENANTS)) if self.rng.random() < 0.3 else cluster
            cur.execute("UPDATE droplets SET cluster_id = %s, tenant_id = %s WHERE id = %s", (*target, row))
        elif choice == 2 and (row := self.pick(cur, "deployments")) is not None:
            cur.execute("UPDATE deployments SET cluster_id = %s WHERE id = %s", (cluster[0], row))

    def remove(self, cur: Any) -> None:
        table = self.rng.choice(("droplets", "jobs", "deployments"))
        row = self.pick(cur, table)
        if row is not None:
            cur.execute(f"DELETE FROM {table} WHERE id = %s", (row,))

    def reannounce(self, cur: Any) -> None:
        """DropletRepository.insert_if_absent's shape on a droplet that exists: nothing inserted, nothing counted."""
        row = self.pick(cur, "droplets")
        if row is not None:
            cur.execute("INSERT INTO droplets (id, tenant_id, cluster_id, name, region, size, image, status) "
                        "SELECT id, tenant_id, cluster_id, name, region, size, image, 'active' FROM droplets d "
                        "WHERE d.id = %s ON DUPLICATE KEY UPDATE droplets.id = droplets.id", (row,))

    def drop_cluster_by_hand(self, cur: Any) -> None:
        """DELETE FROM clusters alone: droplets, jobs and deployments go by ON DELETE CASCADE."""
        cluster = self.some_cluster(cur)
        if cluster is not None:
            cur.execute("DELETE FROM clusters WHERE id = %s", (cluster[0],))

    WRITES: tuple[tuple[str, int], ...] = (
        ("add_cluster", 2), ("add_droplet", 8), ("add_job", 10), ("add_deployment", 4), ("move", 12),
        ("move_many", 3), ("touch", 3), ("rehome", 2), ("remove", 5), ("reannounce", 1), ("drop_cluster_by_hand", 1))

    def one_transaction(self) -> None:
        """One to three random writes in one transaction, rolled back one time in eight."""
        names = [name for name, _ in self.WRITES]
        weights = [weight for _, weight in self.WRITES]
        with self.conn.cursor(pymysql.cursors.DictCursor) as cur:
            try:
                for name in self.rng.choices(names, weights, k=self.rng.randint(1, 3)):
                    getattr(self, name)(cur)
            except pymysql.err.MySQLError as exc:
                # Another connection's cluster deleted under us (1452), a deadlock (1213), a lock wait (1205).
                if exc.args[0] not in (1452, 1213, 1205):
                    raise
                self.conn.rollback()
                return
        if self.rng.random() < 0.125:
            self.conn.rollback()
        else:
            self.conn.commit()


def known_clusters() -> set[str]:
    """Every cluster id the writers used (existing or deleted since): a deleted cluster's usage is 0."""
    rows = db.query("SELECT id FROM clusters UNION SELECT cluster_id FROM droplets WHERE cluster_id IS NOT NULL "
                    "UNION SELECT subject FROM quota_usage WHERE scope = 'cluster'")
    return {row["id"] for row in rows}


def test_counters_equal_the_counts_after_random_writes(clean_db):  # noqa: ANN001
    rng = random.Random(16)
    conn = db.connect()
    try:
        writer = Writer(rng, conn, "r-")
        for _ in range(3):
            with conn.cursor() as cur:
                writer.add_cluster(cur)
            conn.commit()
        seen: set[str] = set()
        for step in range(1, 601):
            writer.one_transaction()
            if step % 100 == 0:
                seen |= known_clusters()
                db.reset_connection()  # a fresh snapshot for the checks
                assert_counters_exact(seen)
        # Every cluster deleted, through the repository (children first, deployments by cascade) or by hand.
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SELECT id FROM clusters WHERE id LIKE 'qc-%%'")
            ids = [row["id"] for row in cur.fetchall()]
        conn.commit()
        for n, cluster_id in enumerate(ids):
            if n % 2:
                ClusterRepository().delete(cluster_id)
            else:
                with db.transaction() as cur:
                    cur.execute("DELETE FROM clusters WHERE id = %s", (cluster_id,))
        with db.transaction() as cur:
            cur.execute("DELETE FROM droplets")  # those without a cluster
        assert_counters_exact(seen)
        assert db.query("SELECT scope, subject, kind, part FROM quota_usage GROUP BY scope, subject, kind, part "
                        "HAVING SUM(n) <> 0") == []
    finally:
        conn.close()


def test_counters_stay_exact_under_concurrent_writers(clean_db):  # noqa: ANN001
    """Four connections write at once into the same clusters and tenants (one of them also deletes clusters by
    hand under the others): their counter rows are in different slots (connection id mod 8), and every
    transaction's counts commit or roll back with it."""
    seed_conn = db.connect()
    try:
        seeder = Writer(random.Random(0), seed_conn, "s-")
        with seed_conn.cursor() as cur:
            for _ in range(6):
                seeder.add_cluster(cur)
        seed_conn.commit()
    finally:
        seed_conn.close()

    failures: list[BaseException] = []
    slots: set[int] = set()

    def work(n: int) -> None:
        conn = db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT CONNECTION_ID() % 8 AS slot")
                slots.add(int(cur.fetchone()["slot"]))
            conn.commit()
            writer = Writer(random.Random(100 + n), conn, f"w{n}-")
            if n == 0:  # the first one deletes clusters by hand (cascade) as often as it adds them
                writer.WRITES = (*Writer.WRITES, ("add_cluster", 6), ("drop_cluster_by_hand", 8))
            else:
                writer.WRITES = tuple((name, w) for name, w in Writer.WRITES if name != "drop_cluster_by_hand")
            for _ in range(200):
                writer.one_transaction()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(slots) > 1  # the writers did use several slots
    db.reset_connection()
    assert_counters_exact(known_clusters())
    with db.transaction() as cur:
        cur.execute("SELECT COUNT(DISTINCT slot) AS n FROM quota_usage WHERE scope = 'tenant'")
        assert cur.fetchone()["n"] > 1


def test_a_clusters_tenant_does_not_change(clean_db):  # noqa: ANN001
    with db.transaction() as cur:
        cur.execute("INSERT INTO clusters (id, tenant_id, name, region) VALUES ('qc-fixed', 't-a', 'q', 'nyc3')")
    with pytest.raises(pymysql.err.OperationalError, match="a cluster does not change tenant"):
        with db.transaction() as cur:
            cur.execute("UPDATE clusters SET tenant_id = 't-b' WHERE id = 'qc-fixed'")
    with db.transaction() as cur:
        cur.execute("UPDATE clusters SET name = 'renamed', status = 'degraded' WHERE id = 'qc-fixed'")  # all else may
        cur.execute("SELECT tenant_id, name FROM clusters WHERE id = 'qc-fixed'")
        assert cur.fetchone() == {"tenant_id": "t-a", "name": "renamed"}


def test_the_migration_counts_the_rows_present_and_its_rollback_removes_the_counters(clean_db):  # noqa: ANN001
    """Rolled back, rows are written without counters; applied again, its backfill counts them exactly as the
    triggers would have (droplets without a cluster, deleted droplets, finished jobs, case variants of a type,
    deployments of several tenants)."""
    from devstack.config import StackConfig
    from devstack.database import MIGRATIONS_DIR, migrate

    cfg, test_db = StackConfig.from_env(), os.environ["CG_DB_NAME"]
    since = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql") if not p.stem.endswith(".rollback") and p.stem >= THIS)
    rolled = migrate(cfg, test_db, "rollback", len(since))
    assert sorted(rolled) == since and rolled[-1] == THIS
    conn = db.connect()
    try:
        db.reset_connection()
        assert db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                        "AND table_name = 'quota_usage'") == []
        assert db.query("SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE() "
                        "AND trigger_name LIKE 'quota\\_usage%%'") == []
        writer = Writer(random.Random(21), conn, "m-")
        with conn.cursor() as cur:
            for _ in range(4):
                writer.add_cluster(cur)
            for _ in range(120):
                getattr(writer, writer.rng.choice(("add_droplet", "add_job", "add_job", "add_deployment", "move")))(cur)
        conn.commit()
    finally:
        conn.close()
        applied = migrate(cfg, test_db, "apply")
        assert sorted(applied) == since and applied[0] == THIS
    db.reset_connection()
    assert_counters_exact(known_clusters())
    assert db.query("SELECT COUNT(*) AS n FROM quota_usage")[0]["n"] > 0
