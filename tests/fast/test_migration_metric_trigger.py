"""Migration 0006: stored policies' percent triggers become the original's fractions, and back on rollback.

Runs the real yoyo migration on the test database (rolled back and re-applied around a stored policy).
"""
from __future__ import annotations

import os
from decimal import Decimal

from chalicelib import db
from devstack.config import StackConfig
from devstack.database import MIGRATIONS_DIR, migrate

# 0006 and every migration after it (rolled back newest first, so 0006 is reached whatever came later).
FROM_0006 = sorted(p.name[:-4] for p in MIGRATIONS_DIR.glob("*.sql")
                   if not p.name.endswith(".rollback.sql") and p.name >= "0006")


def test_stored_percent_triggers_become_fractions_and_rollback_restores_them(clean_db, make_cluster):
    cfg, test_db = StackConfig.from_env(), os.environ["CG_DB_NAME"]
    cluster = make_cluster()
    assert migrate(cfg, test_db, "rollback", len(FROM_0006)) == FROM_0006[::-1]
    try:
        db.reset_connection()
        with db.transaction() as cur:
            cur.execute("INSERT INTO policies (id, cluster_id, name, type, min_replicas, max_replicas, metric_type, "
                        "metric_trigger) VALUES ('policy-old', %s, 'old', 'metrics', 1, 3, 'cpu', 85.5)", (cluster["id"],))
    finally:
        assert migrate(cfg, test_db, "apply") == FROM_0006
    db.reset_connection()
    [row] = db.query("SELECT metric_trigger FROM policies WHERE id = 'policy-old'")
    assert row["metric_trigger"] == Decimal("0.855000")  # 85.5% as the original's fraction, no digit lost
