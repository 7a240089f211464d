"""Migration 0006: stored policies' percent triggers become the original's fractions, and back on rollback.

Runs the real yoyo migration on the test database (rolled back and re-applied around a stored policy).
"""
from __future__ import annotations

import os
from decimal import Decimal

from chalicelib import db
from devstack.config import StackConfig
from devstack.database import MIGRATIONS_DIR, migrate

THIS = "0006_metric_trigger_fraction"


def test_stored_percent_triggers_become_fractions_and_rollback_restores_them(clean_db, make_cluster):
    cfg, test_db = StackConfig.from_env(), os.environ["CG_DB_NAME"]
    cluster = make_cluster()
    # Migrations added later (e.g. 0018) go first and come back after.
    since = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql") if not p.stem.endswith(".rollback") and p.stem >= THIS)
    rolled = migrate(cfg, test_db, "rollback", len(since))
    assert sorted(rolled) == since and rolled[-1] == THIS  # in dependency order, this one last
    try:
        db.reset_connection()
        with db.transaction() as cur:
            cur.execute("INSERT INTO policies (id, cluster_id, name, type, min_replicas, max_replicas, metric_type, "
                        "metric_trigger) VALUES ('policy-old', %s, 'old', 'metrics', 1, 3, 'cpu', 85.5)", (cluster["id"],))
    finally:
        applied = migrate(cfg, test_db, "apply")
        assert sorted(applied) == since and applied[0] == THIS
    db.reset_connection()
    [row] = db.query("SELECT metric_trigger FROM policies WHERE id = 'policy-old'")
    assert row["metric_trigger"] == Decimal("0.855000")  # 85.5% as the original's fraction, no digit lost
