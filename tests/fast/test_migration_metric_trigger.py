"""Migration 0006: stored policies' percent triggers become the original's fractions, and back on rollback.

Runs the real yoyo migration on the test database (rolled back and re-applied around a stored policy).
"""
from __future__ import annotations

import os
from decimal import Decimal

from chalicelib import db
from devstack.config import StackConfig
from devstack.database import migrate


def test_stored_percent_triggers_become_fractions_and_rollback_restores_them(clean_db, make_cluster):
    cfg, test_db = StackConfig.from_env(), os.environ["CG_DB_NAME"]
    cluster = make_cluster()
    rolled: list[str] = []  # later migrations (0013, ...) first, then 0006 itself
    while "0006_metric_trigger_fraction" not in rolled:
        step = migrate(cfg, test_db, "rollback", 1)
        assert step, rolled
        rolled += step
    try:
        db.reset_connection()
        with db.transaction() as cur:
            cur.execute("INSERT INTO policies (id, cluster_id, name, type, min_replicas, max_replicas, metric_type, "
                        "metric_trigger) VALUES ('policy-old', %s, 'old', 'metrics', 1, 3, 'cpu', 85.5)", (cluster["id"],))
    finally:
        assert migrate(cfg, test_db, "apply")[0] == "0006_metric_trigger_fraction"
    db.reset_connection()
    [row] = db.query("SELECT metric_trigger FROM policies WHERE id = 'policy-old'")
    assert row["metric_trigger"] == Decimal("0.855000")  # 85.5% as the original's fraction, no digit lost
